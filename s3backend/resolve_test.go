package s3backend_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/walfs/walfs/providers"
	"github.com/walfs/walfs/s3backend"
)

// clearCredentialEnv makes the credential and region environment empty.
func clearCredentialEnv(t *testing.T) {
	for _, env := range []string{"WALFS_ACCESS_KEY_ID", "WALFS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(env, "")
	}
}

func src[T any](s s3backend.Setting[T]) string { return fmt.Sprintf("%v/%s", s.Value, s.Source) }

func TestResolveSources(t *testing.T) {
	clearCredentialEnv(t)
	r, err := s3backend.Resolve(s3backend.Config{
		URL:    "s3://url-bucket/db?endpoint=s3.us-west-004.backblazeb2.com&force-path-style=false",
		Bucket: "cfg-bucket", SignPayload: boolp(false), Concurrency: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"provider", src(r.Provider), "b2/detected"},
		{"bucket", src(r.Bucket), "cfg-bucket/config"},
		{"path", src(r.Path), "db/url"},
		{"endpoint", src(r.Endpoint), "https://s3.us-west-004.backblazeb2.com/url"},
		{"region", src(r.Region), "us-west-004/detected"},
		{"force-path-style", src(r.ForcePathStyle), "false/url"},
		{"sign-payload", src(r.SignPayload), "false/config"},
		{"skip-verify", src(r.SkipVerify), "false/default"},
		{"part-size", src(r.PartSize), "5242880/default"},
		{"concurrency", src(r.Concurrency), "3/config"},
		{"checksum", src(r.Checksum), "when_required/detected"},
		{"conditional writes", src(r.ConditionalWrites), "no/detected"},
		{"access key", fmt.Sprint(r.Credentials.AccessKeyID), "{false aws-chain AWS default chain}"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	if !strings.Contains(r.Provider.Why, "matches *.backblazeb2.com") || r.Region.Why != providers.RegionFromHostWhy {
		t.Errorf("provider why %q, region why %q: want the matched pattern and the host", r.Provider.Why, r.Region.Why)
	}
}

func TestResolveDefaultsAndEnv(t *testing.T) {
	clearCredentialEnv(t)
	r, err := s3backend.Resolve(s3backend.Config{URL: "s3://bkt"})
	if err != nil {
		t.Fatal(err)
	}
	if got := src(r.Endpoint) + " " + src(r.Region) + " " + src(r.Provider) + " " + src(r.Path); got != "https://s3.us-east-1.amazonaws.com/default us-east-1/default aws/default /default" {
		t.Errorf("AWS defaults: %s", got)
	}
	t.Setenv("AWS_REGION", "eu-north-1")
	t.Setenv("AWS_ENDPOINT_URL_S3", "fly.storage.tigris.dev")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDAWS")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "awssecret")
	t.Setenv("AWS_SESSION_TOKEN", "token")
	r, err = s3backend.Resolve(s3backend.Config{URL: "s3://bkt/p"})
	if err != nil {
		t.Fatal(err)
	}
	if got := src(r.Endpoint) + " " + src(r.Region) + " " + src(r.Headers); got != "https://fly.storage.tigris.dev/env auto/detected [X-Tigris-Consistent]/detected" {
		t.Errorf("endpoint from env: %s", got)
	}
	if c := r.Credentials; c.AccessKeyID.From != "AWS_ACCESS_KEY_ID" || c.SecretAccessKey.From != "AWS_SECRET_ACCESS_KEY" || !c.SessionToken || c.String() != "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" {
		t.Errorf("credentials = %+v (%s)", c, c)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	if r, _ = s3backend.Resolve(s3backend.Config{URL: "s3://bkt/p"}); src(r.Region) != "eu-north-1/env" || r.Region.Why != "AWS_REGION" {
		t.Errorf("region from AWS_REGION: %s (%s)", src(r.Region), r.Region.Why)
	}
}

func TestResolveDetectedConcurrencyCap(t *testing.T) {
	clearCredentialEnv(t)
	r, err := s3backend.Resolve(s3backend.Config{URL: "s3://bkt/p?endpoint=acct.r2.cloudflarestorage.com"})
	if err != nil {
		t.Fatal(err)
	}
	if src(r.Concurrency) != "2/detected" || !strings.Contains(r.Concurrency.Why, "R2") {
		t.Errorf("R2 concurrency = %s (%s), want 2 detected with R2's reason", src(r.Concurrency), r.Concurrency.Why)
	}
}

func TestResolveWarnings(t *testing.T) {
	clearCredentialEnv(t)
	t.Setenv("WALFS_ACCESS_KEY_ID", "AKIDHALF")
	r, err := s3backend.Resolve(s3backend.Config{
		URL: "s3://bkt/p?endpoint=http://s3.us-west-004.backblazeb2.com&region=us-east-1&skip-verify=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"region us-east-1 differs from us-west-004",
		"WALFS_ACCESS_KEY_ID is set but WALFS_SECRET_ACCESS_KEY is not",
		"plain http",
		"skip-verify is on",
	} {
		if !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("warnings %q lack %q", r.Warnings, want)
		}
	}
}

// TestResolveHoldsNoSecrets: nothing a caller can print or marshal carries
// a credential value.
func TestResolveHoldsNoSecrets(t *testing.T) {
	clearCredentialEnv(t)
	t.Setenv("WALFS_ACCESS_KEY_ID", "AKIDENVSECRETVALUE")
	t.Setenv("WALFS_SECRET_ACCESS_KEY", "envsecretvalue")
	for _, cfg := range []s3backend.Config{
		{URL: "s3://bkt/p?endpoint=minio:9000", AccessKeyID: "AKIDCONFIGVALUE", SecretAccessKey: "configsecretvalue"},
		{URL: "s3://bkt/p?endpoint=minio:9000"},
	} {
		r, err := s3backend.Resolve(cfg)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(r)
		for _, out := range []string{fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), string(js)} {
			for _, secret := range []string{"AKIDCONFIGVALUE", "configsecretvalue", "AKIDENVSECRETVALUE", "envsecretvalue"} {
				if strings.Contains(out, secret) {
					t.Errorf("resolved settings leak %q: %s", secret, out)
				}
			}
		}
	}
}

func TestResolveFileAndErrors(t *testing.T) {
	r, err := s3backend.Resolve(s3backend.Config{URL: "file:///var/lib/walfs/replica"})
	if err != nil || r.Type != "file" || src(r.Path) != "/var/lib/walfs/replica/url" {
		t.Errorf("file replica: %+v, %v", r, err)
	}
	if _, err := s3backend.Resolve(s3backend.Config{URL: "s3://bkt/p?endpont=x"}); s3backend.Hint(err) == "" {
		t.Errorf("bad URL: got %v, want an error with a hint", err)
	}
}
