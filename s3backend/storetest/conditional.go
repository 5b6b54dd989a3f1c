package storetest

// The conformance suite for s3backend.ConditionalWriter.

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/walfs/walfs/s3backend"
)

// RunConditional runs every conditional-write conformance test against
// stores made by newStore, which must also implement
// s3backend.ConditionalWriter and s3backend.ChangeReader. Each call must
// return an empty store, as for Run.
func RunConditional(t *testing.T, newStore func(t *testing.T) s3backend.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s s3backend.Store, cw s3backend.ConditionalWriter)
	}{
		{"GetNotFound", testCondGetNotFound},
		{"PutIfAbsent", testCondPutIfAbsent},
		{"PutIfMatch", testCondPutIfMatch},
		{"PutIfMatchMissing", testCondPutIfMatchMissing},
		{"DeleteKey", testCondDeleteKey},
		{"NestedKey", testCondNestedKey},
		{"InvalidKeys", testCondInvalidKeys},
		{"NotListed", testCondNotListed},
		{"RacePutIfAbsent", testCondRacePutIfAbsent},
		{"RacePutIfMatch", testCondRacePutIfMatch},
		{"Probe", testCondProbe},
		{"GetIfNoneMatch", testCondGetIfNoneMatch},
		{"GetIfNoneMatchNotFound", testCondGetIfNoneMatchNotFound},
		{"GetIfNoneMatchInvalidKeys", testCondGetIfNoneMatchInvalidKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			cw, ok := s.(s3backend.ConditionalWriter)
			if !ok {
				t.Fatalf("%T does not implement s3backend.ConditionalWriter", s)
			}
			if err := s.Init(t.Context()); err != nil {
				t.Fatalf("Init: %v", err)
			}
			tt.fn(t, s, cw)
		})
	}
}

const condKey = ".walfs-test.json"

func condGet(t *testing.T, cw s3backend.ConditionalWriter, key string) ([]byte, string) {
	t.Helper()
	body, etag, err := cw.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	if etag == "" {
		t.Fatalf("Get %s: empty ETag", key)
	}
	return body, etag
}

func condCreate(t *testing.T, cw s3backend.ConditionalWriter, key string, body []byte) string {
	t.Helper()
	etag, err := cw.PutIfAbsent(t.Context(), key, body)
	if err != nil {
		t.Fatalf("PutIfAbsent %s: %v", key, err)
	}
	if etag == "" {
		t.Fatalf("PutIfAbsent %s: empty ETag", key)
	}
	return etag
}

func wantContent(t *testing.T, cw s3backend.ConditionalWriter, key string, body []byte, etag string) {
	t.Helper()
	got, gotETag := condGet(t, cw, key)
	if !bytes.Equal(got, body) {
		t.Fatalf("Get %s: got %q, want %q", key, got, body)
	}
	if gotETag != etag {
		t.Fatalf("Get %s: got ETag %s, want %s (the one the write returned)", key, gotETag, etag)
	}
}

func wantPrecondition(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, s3backend.ErrPreconditionFailed) {
		t.Fatalf("%s: got %v, want ErrPreconditionFailed", what, err)
	}
}

func testCondGetNotFound(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	if _, _, err := cw.Get(t.Context(), condKey); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
	}
}

func testCondPutIfAbsent(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	etag := condCreate(t, cw, condKey, []byte("v1"))
	wantContent(t, cw, condKey, []byte("v1"), etag)
	_, err := cw.PutIfAbsent(t.Context(), condKey, []byte("v2"))
	wantPrecondition(t, "second PutIfAbsent", err)
	wantContent(t, cw, condKey, []byte("v1"), etag)
}

func testCondPutIfMatch(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	e1 := condCreate(t, cw, condKey, []byte("v1"))
	e2, err := cw.PutIfMatch(t.Context(), condKey, []byte("v2"), e1)
	if err != nil {
		t.Fatalf("PutIfMatch with the current ETag: %v", err)
	}
	if e2 == "" || e2 == e1 {
		t.Fatalf("PutIfMatch: new ETag %q, want non-empty and different from %q", e2, e1)
	}
	wantContent(t, cw, condKey, []byte("v2"), e2)
	_, err = cw.PutIfMatch(t.Context(), condKey, []byte("v3"), e1)
	wantPrecondition(t, "PutIfMatch with a stale ETag", err)
	wantContent(t, cw, condKey, []byte("v2"), e2)
	e3, err := cw.PutIfMatch(t.Context(), condKey, []byte("v3"), e2)
	if err != nil {
		t.Fatalf("PutIfMatch after a failed one: %v", err)
	}
	wantContent(t, cw, condKey, []byte("v3"), e3)
}

func testCondPutIfMatchMissing(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	e1 := condCreate(t, cw, "other.json", []byte("v1"))
	_, err := cw.PutIfMatch(t.Context(), condKey, []byte("v1"), e1)
	wantPrecondition(t, "PutIfMatch of a missing key", err)
	if _, _, err := cw.Get(t.Context(), condKey); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("after a failed PutIfMatch of a missing key: Get got %v, want ErrNotFound", err)
	}
}

func testCondDeleteKey(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	condCreate(t, cw, condKey, []byte("v1"))
	if err := cw.DeleteKey(t.Context(), condKey); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, _, err := cw.Get(t.Context(), condKey); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Get after DeleteKey: got %v, want ErrNotFound", err)
	}
	if err := cw.DeleteKey(t.Context(), condKey); err != nil {
		t.Fatalf("DeleteKey of a missing key: got %v, want nil", err)
	}
	// Deleted means absent: it can be created again.
	condCreate(t, cw, condKey, []byte("v2"))
}

func testCondNestedKey(t *testing.T, s s3backend.Store, cw s3backend.ConditionalWriter) {
	key := "a/b/" + condKey
	etag := condCreate(t, cw, key, []byte("nested"))
	wantContent(t, cw, key, []byte("nested"), etag)
	if _, _, err := cw.Get(t.Context(), condKey); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Get %s after creating %s: got %v, want ErrNotFound", condKey, key, err)
	}
}

func testCondInvalidKeys(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	ltx := s3backend.Key(info("db", 0, 1, 1))
	for _, key := range []string{"", "/abs", "../up", "a//b", "./x", "a/../b", ltx, ".walfs-tmp-x"} {
		if _, err := cw.PutIfAbsent(t.Context(), key, []byte("x")); !errors.Is(err, s3backend.ErrInvalidKey) {
			t.Errorf("PutIfAbsent(%q): got %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := cw.Get(t.Context(), key); !errors.Is(err, s3backend.ErrInvalidKey) {
			t.Errorf("Get(%q): got %v, want ErrInvalidKey", key, err)
		}
		if _, err := cw.PutIfMatch(t.Context(), key, []byte("x"), "etag"); !errors.Is(err, s3backend.ErrInvalidKey) {
			t.Errorf("PutIfMatch(%q): got %v, want ErrInvalidKey", key, err)
		}
		if err := cw.DeleteKey(t.Context(), key); !errors.Is(err, s3backend.ErrInvalidKey) {
			t.Errorf("DeleteKey(%q): got %v, want ErrInvalidKey", key, err)
		}
	}
}

func testCondNotListed(t *testing.T, s s3backend.Store, cw s3backend.ConditionalWriter) {
	condCreate(t, cw, condKey, []byte("{}"))
	condCreate(t, cw, "db/"+condKey, []byte("{}"))
	condCreate(t, cw, "db/0000/"+condKey, []byte("{}"))
	dbs, err := s.ListDatabases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 0 {
		t.Fatalf("ListDatabases with only conditional objects: got %q, want none", dbs)
	}
	write(t, s, info("db", 0, 1, 1), []byte("ltx"))
	dbs, err = s.ListDatabases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dbs) != "[db]" {
		t.Fatalf("ListDatabases: got %q, want [db]", dbs)
	}
	if got := list(t, s, "db", 0); len(got) != 1 {
		t.Fatalf("List(db, 0): got %d objects, want the one LTX file", len(got))
	}
}

// raceN is how many writers race; exactly one may win each race.
const raceN = 8

func testCondRacePutIfAbsent(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	var wg sync.WaitGroup
	errs := make([]error, raceN)
	for i := range raceN {
		wg.Go(func() {
			_, errs[i] = cw.PutIfAbsent(t.Context(), condKey, fmt.Appendf(nil, "writer %d", i))
		})
	}
	wg.Wait()
	winner := checkOneWinner(t, "PutIfAbsent", errs)
	body, _ := condGet(t, cw, condKey)
	if want := fmt.Sprintf("writer %d", winner); string(body) != want {
		t.Fatalf("after the race: got %q, want the winner's %q", body, want)
	}
}

func testCondRacePutIfMatch(t *testing.T, _ s3backend.Store, cw s3backend.ConditionalWriter) {
	e0 := condCreate(t, cw, condKey, []byte("start"))
	var wg sync.WaitGroup
	errs := make([]error, raceN)
	for i := range raceN {
		wg.Go(func() {
			_, errs[i] = cw.PutIfMatch(t.Context(), condKey, fmt.Appendf(nil, "writer %d", i), e0)
		})
	}
	wg.Wait()
	winner := checkOneWinner(t, "PutIfMatch", errs)
	body, _ := condGet(t, cw, condKey)
	if want := fmt.Sprintf("writer %d", winner); string(body) != want {
		t.Fatalf("after the race: got %q, want the winner's %q", body, want)
	}
}

func checkOneWinner(t *testing.T, what string, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s race: writers %d and %d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, s3backend.ErrPreconditionFailed):
			t.Fatalf("%s race: writer %d: got %v, want success or ErrPreconditionFailed", what, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s race: no writer succeeded", what)
	}
	return winner
}

func testCondProbe(t *testing.T, s s3backend.Store, cw s3backend.ConditionalWriter) {
	if err := s3backend.ProbeConditional(t.Context(), cw); err != nil {
		t.Fatalf("ProbeConditional: %v", err)
	}
	// The probe leaves nothing behind that a second probe would trip on.
	if err := s3backend.ProbeConditional(t.Context(), cw); err != nil {
		t.Fatalf("second ProbeConditional: %v", err)
	}
}
