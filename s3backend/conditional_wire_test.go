package s3backend_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/storetest"
)

// condFake is a plain-HTTP S3 that stores single objects and treats
// conditional headers the way the stores out there do.
type condFake struct {
	srv  *httptest.Server
	mode string // "honour", "ignore" (s3rver), "501" (Backblaze B2), "ignore-if-match"

	mu      sync.Mutex
	objects map[string][]byte
	headers []http.Header // of every PUT
	gets    []http.Header // of every GET of an object
}

func newCondFake(t *testing.T, mode string) *condFake {
	f := &condFake{mode: mode, objects: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *condFake) store(t *testing.T, prefix string) s3backend.Store {
	t.Helper()
	s, err := s3backend.New(t.Context(), s3backend.Config{
		URL: "s3://bkt/" + prefix + "?endpoint=" + f.srv.URL, AccessKeyID: "a", SecretAccessKey: "b",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func etagOf(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func (f *condFake) serve(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/bkt/")
	if !ok {
		if r.URL.Path != "/bkt" {
			s3Error(w, http.StatusNotFound, "NoSuchBucket", "no such bucket")
			return
		}
		key = ""
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, exists := f.objects[key]
	switch r.Method {
	case http.MethodGet:
		if key == "" {
			f.list(w, r.URL.Query().Get("prefix"))
			return
		}
		f.gets = append(f.gets, r.Header.Clone())
		if !exists {
			s3Error(w, http.StatusNotFound, "NoSuchKey", "no such key")
			return
		}
		w.Header().Set("ETag", etagOf(cur))
		if inm := r.Header.Get("If-None-Match"); inm == etagOf(cur) && f.mode != "ignore" {
			w.WriteHeader(http.StatusNotModified) // as S3 does: no body
			return
		}
		w.Write(cur)
	case http.MethodPut:
		f.headers = append(f.headers, r.Header.Clone())
		inm, im := r.Header.Get("If-None-Match"), r.Header.Get("If-Match")
		if (inm != "" || im != "") && f.mode == "501" {
			s3Error(w, http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented")
			return
		}
		if f.mode == "honour" || f.mode == "ignore-if-match" {
			if inm == "*" && exists {
				s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
				return
			}
		}
		if f.mode == "honour" && im != "" {
			if !exists {
				s3Error(w, http.StatusNotFound, "NoSuchKey", "no such key")
				return
			}
			if im != etagOf(cur) {
				s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
				return
			}
		}
		f.objects[key] = body
		w.Header().Set("ETag", etagOf(body))
	case http.MethodDelete:
		delete(f.objects, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented", r.Method)
	}
}

// list answers ListObjectsV2 with every key under prefix (delimiters are
// ignored: the stores filter what they list by key anyway).
func (f *condFake) list(w http.ResponseWriter, prefix string) {
	keys := slices.Sorted(maps.Keys(f.objects))
	keys = slices.DeleteFunc(keys, func(k string) bool { return !strings.HasPrefix(k, prefix) })
	fmt.Fprintf(w, `<ListBucketResult><Name>bkt</Name><KeyCount>%d</KeyCount><IsTruncated>false</IsTruncated>`, len(keys))
	for _, k := range keys {
		fmt.Fprintf(w, `<Contents><Key>%s</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><Size>%d</Size></Contents>`, k, len(f.objects[k]))
	}
	fmt.Fprint(w, `</ListBucketResult>`)
}

// A store that honours the conditions passes the whole suite on the wire,
// and sends exactly the headers S3 defines.
func TestS3ConditionalWire(t *testing.T) {
	f := newCondFake(t, "honour")
	n := 0
	storetest.RunConditional(t, func(t *testing.T) s3backend.Store {
		n++
		return f.store(t, fmt.Sprintf("suite/%d", n))
	})

	f.mu.Lock()
	f.headers = nil
	f.mu.Unlock()
	cw := f.store(t, "headers").(s3backend.ConditionalWriter)
	etag, err := cw.PutIfAbsent(t.Context(), ".walfs-lease.json", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutIfMatch(t.Context(), ".walfs-lease.json", []byte("{ }"), etag); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) != 2 {
		t.Fatalf("got %d PUTs, want 2", len(f.headers))
	}
	if got := f.headers[0].Get("If-None-Match"); got != "*" {
		t.Errorf("PutIfAbsent sent If-None-Match %q, want *", got)
	}
	if got := f.headers[1].Get("If-Match"); got != etag {
		t.Errorf("PutIfMatch sent If-Match %q, want the ETag %s", got, etag)
	}
	if got := f.headers[1].Get("If-None-Match"); got != "" {
		t.Errorf("PutIfMatch also sent If-None-Match %q", got)
	}
}

// Stores without conditional writes are told apart from working ones, each
// with a reason, and the probe leaves no object behind.
func TestS3ConditionalProbeUnsupported(t *testing.T) {
	for _, tt := range []struct {
		mode, detail string
	}{
		{"501", "NotImplemented"},
		{"ignore", "ignores If-None-Match"},
		{"ignore-if-match", "ignores If-Match"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			f := newCondFake(t, tt.mode)
			cw := f.store(t, "replica").(s3backend.ConditionalWriter)
			err := s3backend.ProbeConditional(t.Context(), cw)
			if !errors.Is(err, s3backend.ErrConditionalUnsupported) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("ProbeConditional: got %v, want ErrConditionalUnsupported mentioning %q", err, tt.detail)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for k := range f.objects {
				t.Errorf("probe left %q behind", k)
			}
		})
	}
	t.Run("honour", func(t *testing.T) {
		f := newCondFake(t, "honour")
		if err := s3backend.ProbeConditional(t.Context(), f.store(t, "replica").(s3backend.ConditionalWriter)); err != nil {
			t.Fatalf("ProbeConditional: %v", err)
		}
	})
}

// Backblaze B2's 501 reaches callers as ErrConditionalUnsupported with a
// hint naming the lease setting, on every conditional write.
func TestS3ConditionalNotImplemented(t *testing.T) {
	f := newCondFake(t, "501")
	cw := f.store(t, "replica").(s3backend.ConditionalWriter)
	_, err := cw.PutIfAbsent(t.Context(), ".walfs-lease.json", []byte("{}"))
	if !errors.Is(err, s3backend.ErrConditionalUnsupported) || !strings.Contains(s3backend.Hint(err), "lease") {
		t.Fatalf("PutIfAbsent: got %v (hint %q), want ErrConditionalUnsupported with a lease hint", err, s3backend.Hint(err))
	}
	_, err = cw.PutIfMatch(t.Context(), ".walfs-lease.json", []byte("{}"), `"x"`)
	if !errors.Is(err, s3backend.ErrConditionalUnsupported) {
		t.Fatalf("PutIfMatch: got %v, want ErrConditionalUnsupported", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.headers); n != 2 {
		t.Fatalf("got %d PUTs, want 2: a 501 must not be retried", n)
	}
}

// A poll sends If-None-Match with the ETag it has; S3's 304 (no body, no
// error document) is ErrNotModified, not a failure. A store that ignores
// the header (s3rver) sends the object again: the unchanged ETag tells.
func TestS3GetIfNoneMatchWire(t *testing.T) {
	for _, mode := range []string{"honour", "ignore"} {
		t.Run(mode, func(t *testing.T) {
			f := newCondFake(t, mode)
			s := f.store(t, "replica")
			cw, cr := s.(s3backend.ConditionalWriter), s.(s3backend.ChangeReader)
			etag, err := cw.PutIfAbsent(t.Context(), ".walfs-head.json", []byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			f.gets = nil
			f.mu.Unlock()
			_, _, err = cr.GetIfNoneMatch(t.Context(), ".walfs-head.json", etag)
			if !errors.Is(err, s3backend.ErrNotModified) {
				t.Fatalf("GetIfNoneMatch with the current ETag: got %v, want ErrNotModified", err)
			}
			if errors.Is(err, s3backend.ErrUnreachable) || errors.Is(err, s3backend.ErrNotFound) {
				t.Fatalf("GetIfNoneMatch: %v is classified as another failure too", err)
			}
			body, got, err := cr.GetIfNoneMatch(t.Context(), ".walfs-head.json", `"stale"`)
			if err != nil || string(body) != "{}" || got != etag {
				t.Fatalf("GetIfNoneMatch with a stale ETag: %q, %s, %v", body, got, err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.gets) != 2 {
				t.Fatalf("got %d GETs, want 2: a 304 must not be retried", len(f.gets))
			}
			if h := f.gets[0].Get("If-None-Match"); h != etag {
				t.Errorf("sent If-None-Match %q, want %s", h, etag)
			}
		})
	}
}
