package instrument_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/storetest"
)

// The wrapper must not change what the store does, conditional writes
// (the lease) included.
func TestWrappedFileStoreConformance(t *testing.T) {
	newStore := func(t *testing.T) s3backend.Store {
		return instrument.Wrap(s3backend.NewFileStore(filepath.Join(t.TempDir(), "replica")), instrument.NewCounter())
	}
	storetest.Run(t, newStore)
	storetest.RunConditional(t, newStore)
}

func TestCountsByOperation(t *testing.T) {
	c := instrument.NewCounter()
	s := instrument.Wrap(s3backend.NewFileStore(t.TempDir()), c)
	ctx := t.Context()
	fi := s3backend.FileInfo{DB: "a.db", Level: 0, MinTXID: 1, MaxTXID: 1}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Write(ctx, fi, bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.List(ctx, "a.db", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, s3backend.FileInfo{DB: "b.db", Level: 0, MinTXID: 1, MaxTXID: 1}, 0); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Open missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.Write(ctx, fi, bytes.NewReader([]byte("xy")), 1); !errors.Is(err, s3backend.ErrSizeMismatch) {
		t.Fatalf("short write: got %v, want ErrSizeMismatch", err)
	}
	if err := s.Delete(ctx, []s3backend.FileInfo{fi, fi}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.(s3backend.Stater).Stat(ctx, fi); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Stat deleted: got %v, want ErrNotFound", err)
	}

	ops := c.Ops()
	for _, tc := range []struct {
		op     string
		calls  uint64
		errors map[string]uint64
	}{
		{instrument.OpInit, 1, nil},
		{instrument.OpPut, 4, map[string]uint64{instrument.KindInvalid: 1}},
		{instrument.OpList, 1, nil},
		{instrument.OpGet, 1, map[string]uint64{instrument.KindNotFound: 1}},
		{instrument.OpDelete, 1, nil},
		{instrument.OpStat, 1, map[string]uint64{instrument.KindNotFound: 1}},
		{instrument.OpListDatabases, 0, nil},
	} {
		got := ops[tc.op]
		if got.Calls != tc.calls {
			t.Errorf("%s calls: got %d, want %d", tc.op, got.Calls, tc.calls)
		}
		for kind, want := range tc.errors {
			if got.Errors[kind] != want {
				t.Errorf("%s errors of kind %s: got %d, want %d", tc.op, kind, got.Errors[kind], want)
			}
		}
	}
	if got, want := c.Total(), uint64(9); got != want {
		t.Errorf("Total: got %d, want %d", got, want)
	}
	// a.db: 4 puts, 1 list, 1 delete (of two objects: one call), 1 stat.
	if got, want := c.LastHour("a.db"), uint64(7); got != want {
		t.Errorf("LastHour(a.db): got %d, want %d", got, want)
	}
	if got, want := c.LastHour("b.db"), uint64(1); got != want {
		t.Errorf("LastHour(b.db): got %d, want %d", got, want)
	}
}

// The wrapper keeps the optional interfaces callers type-assert (the lease
// needs ConditionalWriter, point-in-time restore Stater), and adds none the
// store lacks.
func TestWrapKeepsOptionalInterfaces(t *testing.T) {
	fs := s3backend.NewFileStore(t.TempDir())
	for _, tc := range []struct {
		name                                 string
		inner                                s3backend.Store
		stater, conditional, changes, prober bool
	}{
		{"file store", fs, true, true, true, true},
		{"stater only", staterOnly{fs, fs}, true, false, false, false},
		{"plain", plain{fs}, false, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := instrument.Wrap(tc.inner, instrument.NewCounter())
			if _, ok := s.(s3backend.Stater); ok != tc.stater {
				t.Errorf("Stater: %v, want %v", ok, tc.stater)
			}
			if _, ok := s.(s3backend.ConditionalWriter); ok != tc.conditional {
				t.Errorf("ConditionalWriter: %v, want %v", ok, tc.conditional)
			}
			if _, ok := s.(s3backend.ChangeReader); ok != tc.changes {
				t.Errorf("ChangeReader: %v, want %v", ok, tc.changes)
			}
			if _, ok := s.(s3backend.Prober); ok != tc.prober {
				t.Errorf("Prober: %v, want %v", ok, tc.prober)
			}
			u, ok := s.(interface{ Unwrap() s3backend.Store })
			if !ok || u.Unwrap() != tc.inner {
				t.Error("Unwrap does not return the wrapped store")
			}
		})
	}
}

func TestCountsConditionalWrites(t *testing.T) {
	c := instrument.NewCounter()
	s := instrument.Wrap(s3backend.NewFileStore(t.TempDir()), c)
	cw := s.(s3backend.ConditionalWriter)
	ctx := t.Context()
	etag, err := cw.PutIfAbsent(ctx, "lease", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutIfAbsent(ctx, "lease", []byte("b")); !errors.Is(err, s3backend.ErrPreconditionFailed) {
		t.Fatalf("second PutIfAbsent: %v", err)
	}
	if _, _, err := cw.Get(ctx, "lease"); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutIfMatch(ctx, "lease", []byte("c"), etag); err != nil {
		t.Fatal(err)
	}
	if err := cw.DeleteKey(ctx, "lease"); err != nil {
		t.Fatal(err)
	}
	ops := c.Ops()
	if got := ops[instrument.OpConditionalPut]; got.Calls != 3 || got.Errors[instrument.KindPrecondition] != 1 {
		t.Errorf("conditional puts: %+v, want 3 calls, 1 precondition failure", got)
	}
	if ops[instrument.OpConditionalGet].Calls != 1 || ops[instrument.OpConditionalDelete].Calls != 1 {
		t.Errorf("conditional get/delete: %+v", ops)
	}
}

// A poll is counted whatever it finds; an unchanged object is counted as
// not_modified, never as another failure.
func TestCountsPolls(t *testing.T) {
	c := instrument.NewCounter()
	s := instrument.Wrap(s3backend.NewFileStore(t.TempDir()), c)
	cw, cr := s.(s3backend.ConditionalWriter), s.(s3backend.ChangeReader)
	ctx := t.Context()
	if _, _, err := cr.GetIfNoneMatch(ctx, "head", ""); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("poll of a missing object: %v", err)
	}
	etag, err := cw.PutIfAbsent(ctx, "head", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cr.GetIfNoneMatch(ctx, "head", ""); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := cr.GetIfNoneMatch(ctx, "head", etag); !errors.Is(err, s3backend.ErrNotModified) {
			t.Fatalf("poll of an unchanged object: %v", err)
		}
	}
	got := c.Ops()[instrument.OpConditionalPoll]
	want := map[string]uint64{instrument.KindNotFound: 1, instrument.KindNotModified: 3}
	if got.Calls != 5 || !maps.Equal(got.Errors, want) {
		t.Errorf("polls: %+v, want 5 calls and errors %v", got, want)
	}
}

// staterOnly and plain hide the FileStore's optional interfaces.
type staterOnly struct {
	s3backend.Store
	fs *s3backend.FileStore
}

type plain struct{ s3backend.Store }

func (s staterOnly) Stat(ctx context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	return s.fs.Stat(ctx, info)
}

func TestLastHourSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(10*time.Hour + 30*time.Second) // the bubble starts at midnight UTC
		c := instrument.NewCounter()
		s := instrument.Wrap(s3backend.NewFileStore(t.TempDir()), c)
		list := func(n int) {
			for range n {
				if _, err := s.List(t.Context(), "db", 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		list(5) // 10:00
		time.Sleep(30 * time.Minute)
		list(2) // 10:30
		for _, tc := range []struct {
			advance time.Duration
			want    uint64
		}{
			{0, 7},
			{29 * time.Minute, 7}, // 10:59:30: both minutes inside the hour
			{time.Minute, 2},      // 11:00:30: 10:00 fell out
			{30 * time.Minute, 0}, // 11:30:30: 10:30 fell out too
			{24 * time.Hour, 0},   // stale slots of an old day do not come back
		} {
			time.Sleep(tc.advance)
			if got := c.LastHour("db"); got != tc.want {
				t.Errorf("at %s: LastHour got %d, want %d", time.Now().UTC().Format("15:04:05"), got, tc.want)
			}
		}
		list(1)
		if got := c.LastHour("db"); got != 1 {
			t.Errorf("after a day: LastHour got %d, want 1", got)
		}
	})
}
