package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// checkOutput is the part of `walfs config check --json` these tests read.
type checkOutput struct {
	Provider struct{ Value, Source string }
	Endpoint struct{ Value, Source string }
	Probe    *struct {
		Steps []struct {
			Name  string
			OK    bool
			Error string
		}
		ConditionalWrites *struct{ Supported, Detail string } `json:"conditional_writes"`
	}
}

// configCheck runs the real binary and returns stdout and the one-line
// error main printed on stderr.
func configCheck(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, walfsBin, append([]string{"config", "check"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestConfigCheckProbe: `walfs config check --probe` against real servers,
// over HTTP and over HTTPS (ca-file from a config file, skip-verify in the
// URL), finds them usable and measures conditional writes as supported.
func TestConfigCheckProbe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB, ...testserver.Option) *testserver.Server
		tls   string // "", "ca-file" or "skip-verify"
	}{
		{"minio", testserver.StartMinIO, ""},
		{"versitygw", testserver.StartVersityGW, ""},
		{"minio-tls-ca-file", testserver.StartMinIO, "ca-file"},
		{"versitygw-tls-skip-verify", testserver.StartVersityGW, "skip-verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []testserver.Option
			if tc.tls != "" {
				opts = append(opts, testserver.WithTLS())
			}
			srv := tc.start(t, opts...)
			env := append(s3Env(srv), "AWS_CA_BUNDLE=")
			args := []string{"--json", "--probe", "--replica", s3URL(srv, "walfs/check")}
			switch tc.tls {
			case "ca-file":
				cfg := filepath.Join(t.TempDir(), "walfs.yml")
				yaml := "replica:\n  url: " + s3URL(srv, "walfs/check") + "\n  ca-file: " + srv.CAFile + "\n"
				if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--json", "--probe", "--config", cfg}
			case "skip-verify":
				args[len(args)-1] += "&skip-verify=true"
			}
			stdout, stderr, err := configCheck(t, env, args...)
			if err != nil {
				t.Fatalf("walfs config check: %v\n%s\n%s", err, stderr, stdout)
			}
			var got checkOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			if got.Endpoint.Value != srv.Endpoint || got.Provider.Value != "generic" {
				t.Errorf("endpoint %q provider %q, want %q generic", got.Endpoint.Value, got.Provider.Value, srv.Endpoint)
			}
			if got.Probe == nil {
				t.Fatalf("no probe results:\n%s", stdout)
			}
			var steps []string
			for _, s := range got.Probe.Steps {
				if !s.OK {
					t.Errorf("probe step %s failed: %s", s.Name, s.Error)
				}
				steps = append(steps, s.Name)
			}
			if strings.Join(steps, ",") != "list,write,read,delete" {
				t.Errorf("probe steps %v, want list,write,read,delete", steps)
			}
			if cw := got.Probe.ConditionalWrites; cw == nil || cw.Supported != "yes" {
				t.Errorf("conditional writes = %+v, want supported", cw)
			}
		})
	}
}

// TestConfigCheckProbeText: the human output names the measurement, and a
// wrong secret fails with one line that says which credentials were used.
func TestConfigCheckProbeText(t *testing.T) {
	srv := testserver.StartMinIO(t)
	stdout, stderr, err := configCheck(t, s3Env(srv), "--probe", "--replica", s3URL(srv, "walfs/text"))
	if err != nil {
		t.Fatalf("walfs config check: %v\n%s", err, stderr)
	}
	t.Logf("walfs config check --probe:\n%s", stdout)
	for _, want := range []string{"probe of s3://", "conditional writes: supported: a second If-None-Match: * put", "secret-access-key   set"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, srv.SecretKey) || strings.Contains(stdout, srv.AccessKey) {
		t.Errorf("output leaks a credential:\n%s", stdout)
	}

	env := []string{"WALFS_ACCESS_KEY_ID=" + srv.AccessKey, "WALFS_SECRET_ACCESS_KEY=wrong-" + srv.SecretKey}
	_, stderr, err = configCheck(t, env, "--probe", "--replica", s3URL(srv, "walfs/text"))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("wrong secret: got %v, want exit status 1", err)
	}
	line := strings.TrimSpace(stderr)
	t.Logf("wrong secret: %s", line)
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "walfs: probe ") ||
		!strings.Contains(line, "secret-access-key from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY") {
		t.Errorf("wrong secret: want one line naming the credential source, got:\n%s", stderr)
	}
	if strings.Contains(stderr, srv.SecretKey) {
		t.Errorf("error leaks the secret: %s", stderr)
	}
}
