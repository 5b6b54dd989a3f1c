package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/config-check golden files")

// checkEnv empties every variable config check reads, so results do not
// depend on the machine, and sets the ones the guide's examples use.
func checkEnv(t *testing.T) {
	for _, env := range []string{"WALFS_CONFIG", "WALFS_REPLICA_URL", "WALFS_ACCESS_KEY_ID", "WALFS_SECRET_ACCESS_KEY",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE"} {
		t.Setenv(env, "")
	}
	for _, env := range []string{"ACCESS_KEY", "SECRET_KEY", "B2_KEY_ID", "B2_APPLICATION_KEY"} {
		t.Setenv(env, "value-of-"+env)
	}
	t.Setenv("CF_ACCOUNT_ID", "0123456789abcdef")
	t.Setenv("OCI_NAMESPACE", "mynamespace")
	t.Setenv("OCI_REGION", "us-ashburn-1")
}

// runCheck runs `walfs config check args...` in process.
func runCheck(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	err = app.Run(append([]string{"walfs", "config", "check"}, args...))
	return out.String(), err
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "walfs.yml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// guideReplica is a replica block from the guide, in walfs's YAML.
func guideReplica(bucket, endpoint, region string, extra ...string) string {
	y := "access-key-id: ${ACCESS_KEY}\nsecret-access-key: ${SECRET_KEY}\nreplica:\n  type: s3\n  bucket: " + bucket + "\n  path: db\n"
	if endpoint != "" {
		y += "  endpoint: " + endpoint + "\n"
	}
	if region != "" {
		y += "  region: " + region + "\n"
	}
	for _, e := range extra {
		y += "  " + e + "\n"
	}
	return y
}

// TestConfigCheckGuideExamples runs `config check --json` over every
// configuration example of shared/seed/s3-compatible-services.md, written as
// walfs YAML, and checks the resolved settings and their sources. Nothing is
// contacted.
func TestConfigCheckGuideExamples(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want map[string]string // JSON key -> "value/source"
		warn string            // substring of a warning, "" for none
	}{
		{"URL form", "access-key-id: ${ACCESS_KEY}\nsecret-access-key: ${SECRET_KEY}\nreplica:\n  url: s3://mybucket/db?endpoint=s3.us-west-1.wasabisys.com\n",
			map[string]string{"provider": "wasabi/detected", "endpoint": "https://s3.us-west-1.wasabisys.com/config", "bucket": "mybucket/config",
				"path": "db/config", "region": "us-west-1/detected", "force_path_style": "false/detected", "sign_payload": "true/detected"}, ""},
		{"explicit fields", guideReplica("mybucket", "s3.us-west-1.wasabisys.com", "us-west-1"),
			map[string]string{"provider": "wasabi/detected", "region": "us-west-1/config", "checksum": "when_required/detected"}, ""},
		{"MinIO", guideReplica("mybucket", "https://minio.example.com:9000", "us-east-1"),
			map[string]string{"provider": "minio/detected", "endpoint": "https://minio.example.com:9000/config", "force_path_style": "true/detected",
				"sign_payload": "true/detected", "conditional_writes": "yes/detected"}, ""},
		{"Backblaze B2", "access-key-id: ${B2_KEY_ID}\nsecret-access-key: ${B2_APPLICATION_KEY}\n" +
			strings.SplitN(guideReplica("my-bucket", "s3.us-west-004.backblazeb2.com", "us-west-004", "force-path-style: true"), "\n", 3)[2],
			map[string]string{"provider": "b2/detected", "endpoint": "https://s3.us-west-004.backblazeb2.com/config", "region": "us-west-004/config",
				"force_path_style": "true/config", "sign_payload": "true/detected", "conditional_writes": "no/detected"}, ""},
		{"Wasabi", guideReplica("mybucket", "s3.us-east-1.wasabisys.com", "us-east-1"),
			map[string]string{"provider": "wasabi/detected", "force_path_style": "false/detected"}, ""},
		{"Cloudflare R2", guideReplica("mybucket", "${CF_ACCOUNT_ID}.r2.cloudflarestorage.com", "auto"),
			map[string]string{"provider": "r2/detected", "endpoint": "https://0123456789abcdef.r2.cloudflarestorage.com/config", "region": "auto/config",
				"force_path_style": "false/detected", "sign_payload": "true/detected", "concurrency": "2/detected"}, ""},
		{"DigitalOcean Spaces", guideReplica("my-space", "nyc3.digitaloceanspaces.com", "nyc3"),
			map[string]string{"provider": "digitalocean/detected", "force_path_style": "false/detected", "sign_payload": "true/detected", "requests_per_second": "150/detected"}, ""},
		{"Linode", guideReplica("mybucket", "us-east-1.linodeobjects.com", "us-east-1"),
			map[string]string{"provider": "linode/detected", "force_path_style": "false/detected"}, ""},
		{"OCI", guideReplica("mybucket", "${OCI_NAMESPACE}.compat.objectstorage.${OCI_REGION}.oraclecloud.com", "us-east-1"),
			map[string]string{"provider": "oci/detected", "region": "us-east-1/config", "force_path_style": "false/detected"},
			"region us-east-1 differs from us-ashburn-1"},
		{"Vultr", guideReplica("mybucket", "ewr1.vultrobjects.com", "ewr1"),
			map[string]string{"provider": "vultr/detected", "force_path_style": "false/detected"}, ""},
		{"Scaleway", guideReplica("mybucket", "s3.fr-par.scw.cloud", "fr-par"),
			map[string]string{"provider": "scaleway/detected", "force_path_style": "false/detected", "sign_payload": "true/detected"}, ""},
		{"Tigris", guideReplica("mybucket", "fly.storage.tigris.dev", "auto"),
			map[string]string{"provider": "tigris/detected", "headers": "[X-Tigris-Consistent]/detected", "sign_payload": "true/detected", "conditional_writes": "yes/detected"}, ""},
		{"Filebase", guideReplica("mybucket", "s3.filebase.com", "us-east-1"),
			map[string]string{"provider": "filebase/detected", "force_path_style": "true/detected", "requests_per_second": "100/detected"}, ""},
		{"force-path-style option", guideReplica("mybucket", "s3.provider.com", "", "force-path-style: true"),
			map[string]string{"provider": "generic/detected", "force_path_style": "true/config", "region": "us-east-1/detected"}, ""},
		{"skip-verify option", guideReplica("mybucket", "https://minio.local:9000", "", "skip-verify: true"),
			map[string]string{"provider": "minio/detected", "skip_verify": "true/config"}, "skip-verify is on"},
		{"performance tuning", guideReplica("mybucket", "s3.provider.com", "", "part-size: 10MB", "concurrency: 10"),
			map[string]string{"part_size": "10000000/config", "concurrency": "10/config"}, ""},
		{"AWS S3", guideReplica("mybucket", "", "us-west-2"),
			map[string]string{"provider": "aws/default", "endpoint": "https://s3.us-west-2.amazonaws.com/default", "region": "us-west-2/config",
				"checksum": "when_supported/detected", "force_path_style": "false/detected"}, ""},
		{"local HTTP", guideReplica("mybucket", "http://localhost:9000", ""),
			map[string]string{"provider": "generic/detected", "endpoint": "http://localhost:9000/config"}, "plain http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkEnv(t)
			out, err := runCheck(t, "--json", "--config", writeConfig(t, tt.yaml))
			if err != nil {
				t.Fatalf("config check: %v", err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			for key, want := range tt.want {
				var s struct {
					Value  any    `json:"value"`
					Source string `json:"source"`
				}
				dec := json.NewDecoder(bytes.NewReader(got[key]))
				dec.UseNumber()
				if err := dec.Decode(&s); err != nil {
					t.Fatalf("%s: %v in %s", key, err, got[key])
				}
				if g := fmt.Sprintf("%v/%s", s.Value, s.Source); g != want {
					t.Errorf("%s = %s, want %s", key, g, want)
				}
			}
			var warnings []string
			_ = json.Unmarshal(got["warnings"], &warnings)
			if tt.warn == "" && len(warnings) > 0 || tt.warn != "" && !strings.Contains(strings.Join(warnings, "|"), tt.warn) {
				t.Errorf("warnings = %q, want %q", warnings, tt.warn)
			}
			if !strings.Contains(out, `"access_key_id": {`+"\n"+`      "set": true,`+"\n"+`      "source": "config"`) {
				t.Errorf("credentials should be set from the config:\n%s", out)
			}
			if strings.Contains(out, "value-of-") {
				t.Errorf("output leaks a credential:\n%s", out)
			}
		})
	}
}

// TestConfigCheckGolden pins the whole --json document for one guide
// example. Run with -update after an intended change.
func TestConfigCheckGolden(t *testing.T) {
	checkEnv(t)
	t.Setenv("WALFS_ACCESS_KEY_ID", "AKIDFROMENV")
	t.Setenv("WALFS_SECRET_ACCESS_KEY", "secret-from-env")
	for name, args := range map[string][]string{
		"b2-url":  {"--replica", "s3://my-bucket/db?endpoint=s3.us-west-004.backblazeb2.com"},
		"tigris":  {"--replica", "s3://mybucket/db?endpoint=fly.storage.tigris.dev"},
		"r2-file": {"--config", writeConfig(t, guideReplica("mybucket", "${CF_ACCOUNT_ID}.eu.r2.cloudflarestorage.com", "auto"))},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := runCheck(t, append([]string{"--json"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			out = strings.ReplaceAll(out, filepath.Dir(args[1]), "TMP")
			golden := filepath.Join("testdata", "config-check", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/walfs -run TestConfigCheckGolden -update)", err)
			}
			if out != string(want) {
				t.Errorf("config check --json differs from %s (rerun with -update if intended):\n%s", golden, out)
			}
		})
	}
}

// TestConfigCheckContactsNothing: without --probe no request leaves walfs;
// with it, the store is contacted.
func TestConfigCheckContactsNothing(t *testing.T) {
	checkEnv(t)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	url := "s3://bkt/p?endpoint=" + srv.URL
	t.Setenv("WALFS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("WALFS_SECRET_ACCESS_KEY", "secret")
	if _, err := runCheck(t, "--replica", url); err != nil {
		t.Fatal(err)
	}
	if _, err := runCheck(t, "--replica", url, "--json"); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("config check without --probe sent %d requests", n)
	}
	out, err := runCheck(t, "--replica", url, "--probe")
	if err == nil || requests.Load() == 0 {
		t.Fatalf("--probe against a store that refuses everything: err %v after %d requests", err, requests.Load())
	}
	if !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "hint:") || strings.Contains(oneLine(err), "\n") {
		t.Errorf("probe error should be one line with a hint: %v", err)
	}
	if !strings.Contains(out, "list  ") || !strings.Contains(out, "FAILED") {
		t.Errorf("probe steps missing from the output:\n%s", out)
	}
}

func TestConfigCheckProbeUnreachableJSON(t *testing.T) {
	checkEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("WALFS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("WALFS_SECRET_ACCESS_KEY", "secret")
	out, err := runCheck(t, "--json", "--probe", "--replica", "s3://bkt/p?endpoint=http://"+addr)
	if err == nil || !strings.Contains(err.Error(), "nothing accepts connections at http://"+addr) {
		t.Fatalf("probe of a closed port: %v", err)
	}
	var rep struct {
		Probe struct {
			Steps []struct {
				Name  string
				OK    bool
				Error string
			}
		}
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || len(rep.Probe.Steps) != 1 || rep.Probe.Steps[0].OK || rep.Probe.Steps[0].Error == "" {
		t.Errorf("JSON should carry the failed list step: %v\n%s", jerr, out)
	}
}

func TestConfigCheckSources(t *testing.T) {
	checkEnv(t)
	cfg := writeConfig(t, "data-dir: /srv/data\nreplica:\n  url: s3://from-file/p?endpoint=minio:9000\n  region: eu-1\n")
	out, err := runCheck(t, "--config", cfg, "--replica", "s3://from-flag/q?endpoint=minio:9000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(from --replica)", "config file: " + cfg} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, row := range [][]string{{"bucket", "from-flag", "user"}, {"region", "eu-1", "config"}, {"endpoint", "https://minio:9000", "user"}} {
		if !hasRow(out, row...) {
			t.Errorf("no row %v in:\n%s", row, out)
		}
	}
	t.Setenv("WALFS_REPLICA_URL", "/srv/replica")
	if out, err = runCheck(t); err != nil || !strings.Contains(out, "(from WALFS_REPLICA_URL)") || !hasRow(out, "path", "/srv/replica", "user") {
		t.Errorf("WALFS_REPLICA_URL: %v\n%s", err, out)
	}
	t.Setenv("WALFS_REPLICA_URL", "")
	t.Setenv("WALFS_CONFIG", writeConfig(t, "data-dir: /srv/data\n"))
	if out, err = runCheck(t); err != nil || !hasRow(out, "path", "/srv/data/.walfs/replica", "default") {
		t.Errorf("default replica under data-dir: %v\n%s", err, out)
	}
	t.Setenv("WALFS_CONFIG", "")
	if _, err = runCheck(t); err == nil || exitCode(err) != 2 {
		t.Errorf("no replica at all: got %v, want a usage error", err)
	}
	if _, err = runCheck(t, "--replica", "s3://bkt/p?endpont=x"); err == nil || !strings.Contains(err.Error(), "known parameters") {
		t.Errorf("bad URL: got %v, want the resolver's error with hint", err)
	}
}

// hasRow reports whether a table line starts with the given cells.
func hasRow(out string, cells ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(cells) && strings.Join(f[:len(cells)], " ") == strings.Join(cells, " ") {
			return true
		}
	}
	return false
}
