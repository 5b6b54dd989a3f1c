package storetest

// The conformance tests of s3backend.ChangeReader, run by RunConditional.

import (
	"bytes"
	"errors"
	"testing"

	"github.com/walfs/walfs/s3backend"
)

func changeReader(t *testing.T, cw s3backend.ConditionalWriter) s3backend.ChangeReader {
	t.Helper()
	cr, ok := cw.(s3backend.ChangeReader)
	if !ok {
		t.Fatalf("%T does not implement s3backend.ChangeReader", cw)
	}
	return cr
}

func wantNotModified(t *testing.T, what string, body []byte, etag string, err error) {
	t.Helper()
	if !errors.Is(err, s3backend.ErrNotModified) {
		t.Fatalf("%s: got %q, ETag %q, err %v; want ErrNotModified", what, body, etag, err)
	}
	if body != nil || etag != "" {
		t.Fatalf("%s: got body %q and ETag %q with ErrNotModified, want neither", what, body, etag)
	}
}

func wantChanged(t *testing.T, what string, cr s3backend.ChangeReader, match string, body []byte, etag string) {
	t.Helper()
	got, gotETag, err := cr.GetIfNoneMatch(t.Context(), condKey, match)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(got, body) || gotETag != etag {
		t.Fatalf("%s: got %q (ETag %s), want %q (ETag %s)", what, got, gotETag, body, etag)
	}
}

// A poll with the current ETag reads nothing; one with an empty or stale
// ETag reads the object as Get does.
func testCondGetIfNoneMatch(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	cr := changeReader(t, cw)
	e1 := condCreate(t, cw, condKey, []byte("v1"))
	wantChanged(t, "GetIfNoneMatch with no ETag", cr, "", []byte("v1"), e1)

	body, etag, err := cr.GetIfNoneMatch(t.Context(), condKey, e1)
	wantNotModified(t, "GetIfNoneMatch with the current ETag", body, etag, err)

	e2, err := cw.PutIfMatch(t.Context(), condKey, []byte("v2"), e1)
	if err != nil {
		t.Fatalf("PutIfMatch: %v", err)
	}
	wantChanged(t, "GetIfNoneMatch with the ETag before the write", cr, e1, []byte("v2"), e2)
	body, etag, err = cr.GetIfNoneMatch(t.Context(), condKey, e2)
	wantNotModified(t, "GetIfNoneMatch with the new ETag", body, etag, err)

	// An ETag of another object is just a stale one.
	other := condCreate(t, cw, "other.json", []byte("other"))
	wantChanged(t, "GetIfNoneMatch with another object's ETag", cr, other, []byte("v2"), e2)
}

func testCondGetIfNoneMatchNotFound(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	cr := changeReader(t, cw)
	for _, match := range []string{"", `"0123456789abcdef0123456789abcdef"`} {
		if _, _, err := cr.GetIfNoneMatch(t.Context(), condKey, match); !errors.Is(err, s3backend.ErrNotFound) {
			t.Fatalf("GetIfNoneMatch(%q) of a missing key: got %v, want ErrNotFound", match, err)
		}
	}
	e1 := condCreate(t, cw, condKey, []byte("v1"))
	if err := cw.DeleteKey(t.Context(), condKey); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cr.GetIfNoneMatch(t.Context(), condKey, e1); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("GetIfNoneMatch of a deleted key with its last ETag: got %v, want ErrNotFound", err)
	}
}

func testCondGetIfNoneMatchInvalidKeys(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	cr := changeReader(t, cw)
	ltx := s3backend.Key(info("db", 0, 1, 1))
	for _, key := range []string{"", "/abs", "../up", ltx, ".walfs-tmp-x"} {
		if _, _, err := cr.GetIfNoneMatch(t.Context(), key, `"x"`); !errors.Is(err, s3backend.ErrInvalidKey) {
			t.Errorf("GetIfNoneMatch(%q): got %v, want ErrInvalidKey", key, err)
		}
	}
}
