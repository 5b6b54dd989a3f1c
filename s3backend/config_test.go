package s3backend_test

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/walfs/walfs/s3backend"
)

func boolp(b bool) *bool { return &b }

func TestNewFileStores(t *testing.T) {
	for _, cfg := range []s3backend.Config{
		{URL: "file:///var/lib/walfs/replica"},
		{URL: "file://localhost/var/lib/walfs/replica/"},
		{URL: "/var/lib/walfs/replica"},
		{Type: "file", Path: "/var/lib/walfs/replica"},
		{Path: "/var/lib/walfs/replica"},
		{Type: "FILE", URL: "/var/lib/walfs/./replica"},
	} {
		s, err := s3backend.New(t.Context(), cfg, nil)
		if err != nil {
			t.Errorf("New(%v): %v", cfg, err)
			continue
		}
		fs, ok := s.(*s3backend.FileStore)
		if !ok {
			t.Errorf("New(%v) = %T, want *FileStore", cfg, s)
			continue
		}
		if fs.Root() != "/var/lib/walfs/replica" {
			t.Errorf("New(%v) root = %q", cfg, fs.Root())
		}
	}
}

func TestNewS3Stores(t *testing.T) {
	tests := []struct {
		cfg  s3backend.Config
		want string // String() of the store
	}{
		{s3backend.Config{URL: "s3://bkt/some/path"}, "s3://bkt/some/path"},
		{s3backend.Config{URL: "s3://bkt"}, "s3://bkt/"},
		{s3backend.Config{URL: "s3://bkt/p?endpoint=127.0.0.1:9000&region=x&force-path-style=true"}, "s3://bkt/p (endpoint https://127.0.0.1:9000, generic)"},
		{s3backend.Config{URL: "s3://bkt/p?endpoint=http://minio:9000/"}, "s3://bkt/p (endpoint http://minio:9000, minio)"},
		{s3backend.Config{Type: "s3", Bucket: "bkt", Path: "/p/", Endpoint: "fly.storage.tigris.dev"}, "s3://bkt/p (endpoint https://fly.storage.tigris.dev, tigris)"},
		{s3backend.Config{Bucket: "bkt", Endpoint: "acct.eu.r2.cloudflarestorage.com"}, "s3://bkt/ (endpoint https://acct.eu.r2.cloudflarestorage.com, r2)"},
		// Explicit fields win over the URL.
		{s3backend.Config{URL: "s3://a/x?endpoint=s3.filebase.com", Bucket: "b", Path: "y"}, "s3://b/y (endpoint https://s3.filebase.com, filebase)"},
	}
	for _, tt := range tests {
		s, err := s3backend.New(t.Context(), tt.cfg, nil)
		if err != nil {
			t.Errorf("New(%v): %v", tt.cfg, err)
			continue
		}
		if got := s.String(); got != tt.want {
			t.Errorf("New(%v).String() = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestNewErrorsHaveHints(t *testing.T) {
	for _, tt := range []struct {
		cfg  s3backend.Config
		hint string // substring of the hint
	}{
		{s3backend.Config{}, "set url"},
		{s3backend.Config{URL: "relative/path"}, "absolute path"},
		{s3backend.Config{Path: "relative"}, "absolute path"},
		{s3backend.Config{URL: "file://var/lib/x"}, "three slashes"},
		{s3backend.Config{URL: "file:///x?y=1"}, "remove"},
		{s3backend.Config{URL: "gs://bkt/p"}, "storage.googleapis.com"},
		{s3backend.Config{URL: "abs://acct/container"}, "Azure"},
		{s3backend.Config{URL: "sftp://host/p"}, "s3://bucket/path"},
		{s3backend.Config{URL: "https://s3.example.com/bkt"}, "endpoint="},
		{s3backend.Config{Type: "webdav", Path: "/x"}, "s3://bucket/path"},
		{s3backend.Config{URL: "s3:///path"}, "s3://bucket/path"},
		{s3backend.Config{URL: "s3://bkt/p?endpont=x"}, "known parameters"},
		{s3backend.Config{URL: "s3://bkt/p?force-path-style=maybe"}, "true or false"},
		{s3backend.Config{URL: "s3://key:secret@bkt/p"}, "remove user:password@"},
		{s3backend.Config{URL: "s3://bkt/p", Type: "file"}, "match the URL"},
		{s3backend.Config{Type: "s3"}, "set bucket"},
		{s3backend.Config{URL: "s3://bkt/p", AccessKeyID: "x"}, "set both"},
		{s3backend.Config{URL: "s3://bkt/p", PartSize: 1 << 20}, "part-size"},
		{s3backend.Config{URL: "s3://bkt/p", Concurrency: -1}, "concurrency"},
		{s3backend.Config{URL: "s3://bkt/p?endpoint=ftp://x"}, "http://"},
		{s3backend.Config{URL: "s3://bkt/../p"}, "plain path"},
		{s3backend.Config{URL: "s3://bkt/p", CAFile: "/nonexistent/ca.pem"}, "ca-file"},
		{s3backend.Config{URL: "/x", Bucket: "b"}, "type: s3"},
	} {
		_, err := s3backend.New(t.Context(), tt.cfg, nil)
		if err == nil {
			t.Errorf("New(%v): got nil error", tt.cfg)
			continue
		}
		if !errors.Is(err, s3backend.ErrInvalidConfig) {
			t.Errorf("New(%v): %v does not match ErrInvalidConfig", tt.cfg, err)
		}
		if h := s3backend.Hint(err); !strings.Contains(h, tt.hint) {
			t.Errorf("New(%v): hint %q lacks %q (err %v)", tt.cfg, h, tt.hint, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("New(%v): error is not one line: %q", tt.cfg, err)
		}
		if strings.Contains(err.Error(), "secret@") {
			t.Errorf("New(%v): error leaks the URL's password: %q", tt.cfg, err)
		}
	}
}

func TestConfigStringRedacts(t *testing.T) {
	cfg := s3backend.Config{
		URL:             "s3://bkt/p?endpoint=x.example.com&secret-key=hunter2",
		AccessKeyID:     "AKIAIOSFODNN7EXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		ForcePathStyle:  boolp(true),
		PartSize:        8 << 20,
	}
	s := cfg.String()
	for _, leak := range []string{"wJalrXUtnFEMI", "IOSFODNN7EXAMPLE", "hunter2"} {
		if strings.Contains(s, leak) {
			t.Errorf("String() = %q leaks %q", s, leak)
		}
	}
	for _, want := range []string{"s3://bkt/p", "endpoint=x.example.com", "AKIA", "force-path-style=true", "part-size=8388608"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q lacks %q", s, want)
		}
	}
	if s := (s3backend.Config{URL: "s3://user:pw@bkt/p"}).String(); strings.Contains(s, "pw") {
		t.Errorf("String() = %q leaks URL password", s)
	}
}

var akidRE = regexp.MustCompile(`Credential=([^/]+)/`)

// TestCredentialsPrecedence: explicit > WALFS_* > AWS_* (observed in the
// Authorization header the server receives).
func TestCredentialsPrecedence(t *testing.T) {
	fake := newFakeS3(t, "bkt")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	used := func(cfg s3backend.Config) string {
		t.Helper()
		cfg.URL = "s3://bkt/p?endpoint=" + fake.srv.URL
		cfg.CAFile = fake.caFile
		s, err := s3backend.New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(t.Context(), "db", 0); err != nil {
			t.Fatal(err)
		}
		reqs := fake.recorded()
		m := akidRE.FindStringSubmatch(reqs[len(reqs)-1].Header.Get("Authorization"))
		if m == nil {
			t.Fatalf("no credential in %q", reqs[len(reqs)-1].Header.Get("Authorization"))
		}
		return m[1]
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AWSKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "awssecret")
	if got := used(s3backend.Config{}); got != "AWSKEY" {
		t.Errorf("AWS env only: used %q, want AWSKEY", got)
	}
	t.Setenv("WALFS_ACCESS_KEY_ID", "WALFSKEY")
	t.Setenv("WALFS_SECRET_ACCESS_KEY", "walfssecret")
	if got := used(s3backend.Config{}); got != "WALFSKEY" {
		t.Errorf("WALFS and AWS env: used %q, want WALFSKEY", got)
	}
	if got := used(s3backend.Config{AccessKeyID: "CFGKEY", SecretAccessKey: "cfgsecret"}); got != "CFGKEY" {
		t.Errorf("explicit config: used %q, want CFGKEY", got)
	}
}

// TestCABundle: AWS_CA_BUNDLE (set on our machines) works with the store's
// HTTP client, alone and together with ca-file; an untrusted server fails
// with a hint.
func TestCABundle(t *testing.T) {
	fake := newFakeS3(t, "bkt")
	list := func(cfg s3backend.Config) error {
		cfg.URL = "s3://bkt/p?endpoint=" + fake.srv.URL
		cfg.AccessKeyID, cfg.SecretAccessKey = "a", "b"
		s, err := s3backend.New(t.Context(), cfg, nil)
		if err != nil {
			return err
		}
		_, err = s.List(t.Context(), "db", 0)
		return err
	}
	t.Setenv("AWS_CA_BUNDLE", fake.caFile)
	if err := list(s3backend.Config{}); err != nil {
		t.Errorf("AWS_CA_BUNDLE naming the server's CA: %v", err)
	}
	t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
	if err := list(s3backend.Config{CAFile: fake.caFile}); err != nil {
		t.Errorf("AWS_CA_BUNDLE plus ca-file: %v", err)
	}
	err := list(s3backend.Config{})
	if !errors.Is(err, s3backend.ErrUnreachable) || !strings.Contains(s3backend.Hint(err), "ca-file") {
		t.Errorf("untrusted certificate: got %v (hint %q), want ErrUnreachable with a ca-file hint", err, s3backend.Hint(err))
	}
	if err := list(s3backend.Config{SkipVerify: boolp(true)}); err != nil {
		t.Errorf("skip-verify: %v", err)
	}
	t.Setenv("AWS_CA_BUNDLE", "")
	if err := list(s3backend.Config{CAFile: fake.caFile}); err != nil {
		t.Errorf("ca-file without AWS_CA_BUNDLE: %v", err)
	}
}

func TestUnreachableEndpointHint(t *testing.T) {
	s, err := s3backend.New(t.Context(), s3backend.Config{
		URL: "s3://bkt/p?endpoint=http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "b",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Init(t.Context())
	if !errors.Is(err, s3backend.ErrUnreachable) || !strings.Contains(s3backend.Hint(err), "endpoint") {
		t.Fatalf("Init against closed port: got %v (hint %q), want ErrUnreachable with endpoint hint", err, s3backend.Hint(err))
	}
}

func TestNewWarnsOnInsecureSettings(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	_, err := s3backend.New(t.Context(), s3backend.Config{
		URL: "s3://bkt/p?endpoint=http://127.0.0.1:9000&skip-verify=true", AccessKeyID: "a", SecretAccessKey: "topsecret",
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"plain http", "skip-verify"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "topsecret") {
		t.Errorf("log leaks the secret:\n%s", out)
	}
}

func TestNewUsesAWSEndpointEnv(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "https://s3.us-west-004.backblazeb2.com")
	s, err := s3backend.New(t.Context(), s3backend.Config{URL: "s3://bkt/p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://bkt/p (endpoint https://s3.us-west-004.backblazeb2.com, b2)"; s.String() != want {
		t.Fatalf("String() = %q, want %q", s.String(), want)
	}
}
