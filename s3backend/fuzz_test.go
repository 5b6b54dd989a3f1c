package s3backend_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/walfs/walfs/s3backend"
)

// FuzzNewConfigURL feeds arbitrary replica URLs through New: it must never
// panic, errors must be one line, and secrets given separately never appear
// in errors or in String().
func FuzzNewConfigURL(f *testing.F) {
	for _, s := range []string{
		"s3://bkt/p?endpoint=127.0.0.1:9000&region=x&force-path-style=true",
		"file:///abs", "/abs/path", "file://host/x", "s3://", "s3://b/../x", "gs://b",
		"s3://b/p?skip-verify=1&sign-payload=false&ca-file=/x", "%", "s3://u:p@b/", "s3://b/p?endpoint=http://[::1]:9000",
	} {
		f.Add(s)
	}
	const secret = "fuzz-secret-value-never-printed"
	f.Fuzz(func(t *testing.T, url string) {
		cfg := s3backend.Config{URL: url, AccessKeyID: "AKIDFUZZ", SecretAccessKey: secret}
		if strings.Contains(cfg.String(), secret) {
			t.Fatalf("String() leaks the secret: %q", cfg.String())
		}
		if r, err := s3backend.Resolve(cfg); err == nil {
			if js, _ := json.Marshal(r); strings.Contains(string(js), secret) || strings.Contains(string(js), "AKIDFUZZ") {
				t.Fatalf("Resolve leaks a credential: %s", js)
			}
		}
		s, err := s3backend.New(t.Context(), cfg, nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), secret) {
				t.Fatalf("bad error for %q: %q", url, err)
			}
			return
		}
		if strings.Contains(s.String(), secret) {
			t.Fatalf("store String() leaks the secret: %q", s.String())
		}
	})
}

// FuzzParseKey checks ParseKey and Key agree on every key ParseKey accepts.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"0000/0000000000000001-0000000000000001.ltx",
		"a/b.db/0009/0000000000000001-00000000000000ff.ltx",
		"x/0000/0000000000000002-0000000000000001.ltx", "", "/0000/x.ltx",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		info, ok := s3backend.ParseKey(key)
		if !ok {
			return
		}
		if got := s3backend.Key(info); got != key {
			t.Fatalf("Key(ParseKey(%q)) = %q", key, got)
		}
		if err := s3backend.ValidateDB(info.DB); err != nil {
			t.Fatalf("ParseKey(%q) accepted db %q: %v", key, info.DB, err)
		}
	})
}
