package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	cfg, err := parse([]byte(fullExample), "walfs.yml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.String()
	want := "data-dir=/var/lib/walfs mount-point=/mnt/db access-key-id=****MPLE secret-access-key=REDACTED " +
		"sync-interval=1s durability=async sync-timeout=10s timeout=30s capture=auto log-level=info log-format=text " +
		"snapshot-interval=24h retention=24h lease=auto replica.type=s3 replica.bucket=b replica.path=p " +
		"replica.endpoint=http://127.0.0.1:9000 replica.region=us-east-1 replica.access-key-id=****0001 " +
		"replica.secret-access-key=REDACTED replica.force-path-style=true replica.skip-verify=false " +
		"replica.part-size=5MB replica.concurrency=4 replica.sign-payload=true replica.ca-file=/etc/ssl/my-ca.pem"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestStringShowsSetEmptyValues(t *testing.T) {
	cfg, err := parse([]byte("secret-access-key: $EMPTY\nsync-interval: 0s\ndata-dir: /a b\nreplica:\n  concurrency: 1\n"), "walfs.yml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.String()
	want := `data-dir="/a b" secret-access-key="" sync-interval=0s replica.concurrency=1`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"s3://bucket/path", "s3://bucket/path"},
		{"s3://bucket/path?endpoint=http://127.0.0.1:9000&region=x", "s3://bucket/path?endpoint=http://127.0.0.1:9000&region=x"},
		{"s3://AKID:pw@bucket/p", "s3://AKID:REDACTED@bucket/p"},
		{"s3://AKID@bucket/p", "s3://AKID@bucket/p"},
		{"s3://b/p?secret-access-key=pw&region=r", "s3://b/p?region=r&secret-access-key=REDACTED"},
		{"https://h/o?X-Amz-Signature=abc&X-Amz-Credential=AK%2F1&X-Amz-Security-Token=t", "https://h/o?X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"},
		{"s3://b/p?secret=%zz", "s3://b/p?REDACTED"},
		{"s3://b:%zz@x/?y", "REDACTED"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestNoSecretInOutput prints a config every way a caller might and checks
// the secrets never appear.
func TestNoSecretInOutput(t *testing.T) {
	const urlSecret = "urlPassw0rdXYZ"
	in := fullExample + "  url: s3://AKIDEXAMPLE:" + urlSecret + "@bucket/p?X-Amz-Signature=" + urlSecret + "\n"
	in = strings.Replace(in, "  bucket: b\n  path: p\n", "", 1)
	cfg, err := parse([]byte(in), "walfs.yml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("mount", "config", cfg, "replica", cfg.Replica, "value", *cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("mount", "config", cfg, "replica", *cfg.Replica)
	outputs := map[string]string{
		"String":      cfg.String(),
		"%v":          fmt.Sprintf("%v", cfg),
		"%+v value":   fmt.Sprintf("%+v", *cfg),
		"%#v":         fmt.Sprintf("%#v", cfg),
		"%#v value":   fmt.Sprintf("%#v", *cfg),
		"%s":          fmt.Sprintf("%s", cfg),
		"replica %v":  fmt.Sprintf("%v", cfg.Replica),
		"replica %#v": fmt.Sprintf("%#v", *cfg.Replica),
		"slog":        logged.String(),
	}
	for name, out := range outputs {
		for _, secret := range []string{testSecret, urlSecret, "AKIAIOSFODNN7EXAMPLE"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s leaks %q: %s", name, secret, out)
			}
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s: got %s, want REDACTED in it", name, out)
		}
	}
}
