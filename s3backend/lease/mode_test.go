package lease_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]lease.Mode{"": lease.ModeAuto, "auto": lease.ModeAuto, "required": lease.ModeRequired, "off": lease.ModeOff} {
		if got, err := lease.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := lease.ParseMode("on"); err == nil || !strings.Contains(err.Error(), "auto, required or off") {
		t.Errorf("ParseMode(on): got %v, want an error listing the modes", err)
	}
}

// noCondStore is a Store without conditional writes at all.
type noCondStore struct{ s3backend.Store }

// s3Stub is an S3 endpoint that stores objects but has no working
// conditional writes: "501" refuses them as Backblaze B2 does, "ignore"
// drops the headers as s3rver does.
func s3Stub(t *testing.T, mode string) s3backend.Store {
	var mu sync.Mutex
	objects := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/bkt"), "/")
		body, _ := io.ReadAll(r.Body)
		fail := func(status int, code string) {
			w.WriteHeader(status)
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, code)
		}
		switch {
		case r.Method == http.MethodGet && key == "":
			fmt.Fprint(w, `<ListBucketResult><Name>bkt</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`)
		case r.Method == http.MethodGet:
			b, ok := objects[key]
			if !ok {
				fail(http.StatusNotFound, "NoSuchKey")
				return
			}
			sum := md5.Sum(b)
			w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
			w.Write(b)
		case r.Method == http.MethodPut:
			if mode == "501" && (r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Match") != "") {
				fail(http.StatusNotImplemented, "NotImplemented")
				return
			}
			objects[key] = body
			sum := md5.Sum(body)
			w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		case r.Method == http.MethodDelete:
			delete(objects, key)
			w.WriteHeader(http.StatusNoContent)
		default:
			fail(http.StatusNotImplemented, "NotImplemented")
		}
	}))
	t.Cleanup(srv.Close)
	st, err := s3backend.New(t.Context(), s3backend.Config{URL: "s3://bkt/replica?endpoint=" + srv.URL, AccessKeyID: "a", SecretAccessKey: "b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOpenModes(t *testing.T) {
	unsupported := map[string]func(t *testing.T) s3backend.Store{
		"b2-501":          func(t *testing.T) s3backend.Store { return s3Stub(t, "501") },
		"ignores-headers": func(t *testing.T) s3backend.Store { return s3Stub(t, "ignore") },
		"no-conditional-writes": func(t *testing.T) s3backend.Store {
			return noCondStore{s3backend.NewFileStore(t.TempDir())}
		},
	}
	for name, newStore := range unsupported {
		t.Run(name+"/auto", func(t *testing.T) {
			var logs syncBuffer
			l, err := lease.Open(t.Context(), newStore(t), lease.ModeAuto, lease.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil || l != nil {
				t.Fatalf("Open(auto): got %v, %v; want no lease and no error", l, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "runs without a lease") {
				t.Fatalf("Open(auto) did not warn:\n%s", logs.String())
			}
		})
		t.Run(name+"/required", func(t *testing.T) {
			l, err := lease.Open(t.Context(), newStore(t), lease.ModeRequired, lease.Options{})
			if l != nil || !errors.Is(err, s3backend.ErrConditionalUnsupported) || !strings.Contains(s3backend.Hint(err), "lease: auto") {
				t.Fatalf("Open(required): got %v, %v (hint %q); want ErrConditionalUnsupported with a hint", l, err, s3backend.Hint(err))
			}
		})
	}

	t.Run("off", func(t *testing.T) {
		l, err := lease.Open(t.Context(), s3Stub(t, "501"), lease.ModeOff, lease.Options{})
		if l != nil || err != nil {
			t.Fatalf("Open(off): got %v, %v; want nil, nil", l, err)
		}
	})

	for _, mode := range []lease.Mode{lease.ModeAuto, lease.ModeRequired} {
		t.Run("file/"+string(mode), func(t *testing.T) {
			st := s3backend.NewFileStore(t.TempDir())
			l, err := lease.Open(t.Context(), st, mode, lease.Options{Holder: hostA})
			if err != nil || l == nil {
				t.Fatalf("Open(%s) on a file store: %v, %v; want a lease", mode, l, err)
			}
			defer l.Release(t.Context())
			_, err = lease.Open(t.Context(), st, mode, lease.Options{Holder: hostB})
			if !errors.Is(err, lease.ErrHeld) || !strings.Contains(err.Error(), "host-a") || !strings.Contains(err.Error(), st.String()) {
				t.Fatalf("second Open: got %v, want ErrHeld naming host-a and the replica", err)
			}
		})
	}
}
