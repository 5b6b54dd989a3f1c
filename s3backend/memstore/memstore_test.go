package memstore_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/s3backend/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) s3backend.Store { return memstore.New() })
}

func TestConditionalConformance(t *testing.T) {
	storetest.RunConditional(t, func(*testing.T) s3backend.Store { return memstore.New() })
}

// A Faulty store with no faults injected is still a conforming store.
func TestFaultyConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) s3backend.Store { return memstore.Wrap(memstore.New()) })
}

func info(level int, minTXID, maxTXID uint64) s3backend.FileInfo {
	return s3backend.FileInfo{DB: "db", Level: level, MinTXID: minTXID, MaxTXID: maxTXID}
}

func put(t *testing.T, s s3backend.Store, fi s3backend.FileInfo, data string) s3backend.FileInfo {
	t.Helper()
	got, err := s.Write(t.Context(), fi, bytes.NewReader([]byte(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestListTime(t *testing.T) {
	s := memstore.New()
	commit := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	fi := info(0, 1, 1)
	fi.CreatedAt = commit
	put(t, s, fi, "x")
	s.SetListTime(func(fi s3backend.FileInfo) time.Time { return fi.CreatedAt.Add(time.Minute) })
	infos, err := s.List(t.Context(), "db", 0)
	if err != nil || len(infos) != 1 || !infos[0].CreatedAt.Equal(commit.Add(time.Minute)) {
		t.Fatalf("List: %+v, %v; want the listed time", infos, err)
	}
	got, err := s.Stat(t.Context(), fi)
	if err != nil || !got.CreatedAt.Equal(commit) {
		t.Fatalf("Stat: %+v, %v; want the commit time", got, err)
	}
}

func TestRewrite(t *testing.T) {
	s := memstore.New()
	fi := put(t, s, info(0, 1, 1), "abcdef")
	if err := s.Rewrite(fi, func(b []byte) []byte { return b[:3] }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Stat(t.Context(), fi)
	if err != nil || got.Size != 3 || !got.CreatedAt.Equal(fi.CreatedAt) {
		t.Fatalf("Stat after Rewrite: %+v, %v; want size 3 and the old CreatedAt", got, err)
	}
	if err := s.Rewrite(info(0, 2, 2), func(b []byte) []byte { return b }); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Rewrite of a missing object: %v, want ErrNotFound", err)
	}
	if got, want := s.Keys(), []string{"db/0000/0000000000000001-0000000000000001.ltx"}; !slices.Equal(got, want) {
		t.Fatalf("Keys: %q, want %q", got, want)
	}
}

var errInjected = errors.New("injected")

func TestFaultTimesAndMatch(t *testing.T) {
	f := memstore.Wrap(memstore.New())
	f.Inject(memstore.Fault{Op: memstore.OpWrite, Times: 2, Err: errInjected,
		Match: func(c memstore.Call) bool { return c.Level > 0 }})
	var errs []error
	for i, level := range []int{1, 0, 1, 1} {
		_, err := f.Write(t.Context(), info(level, uint64(i+1), uint64(i+1)), bytes.NewReader(nil), 0)
		errs = append(errs, err)
	}
	for i, want := range []bool{true, false, true, false} {
		if got := errors.Is(errs[i], errInjected); got != want {
			t.Errorf("write %d: %v, want injected %v", i, errs[i], want)
		}
	}
	if n := len(f.Calls(memstore.OpWrite)); n != 4 {
		t.Errorf("%d writes logged, want 4", n)
	}
}

func TestFaultRemove(t *testing.T) {
	f := memstore.Wrap(memstore.New())
	remove := f.Inject(memstore.Fault{Op: memstore.OpListDatabases, Err: errInjected})
	if _, err := f.ListDatabases(t.Context()); !errors.Is(err, errInjected) {
		t.Fatalf("while injected: %v", err)
	}
	remove()
	remove()
	if _, err := f.ListDatabases(t.Context()); err != nil {
		t.Fatalf("after remove: %v", err)
	}
}

func TestFaultBrokenRead(t *testing.T) {
	s := memstore.New()
	f := memstore.Wrap(s)
	fi := put(t, s, info(0, 1, 1), "0123456789")
	f.Inject(memstore.Fault{Op: memstore.OpOpen, Times: 1, ReadErr: errInjected, ReadAfter: 4})
	for i, want := range []string{"2345", "23456789"} {
		rc, err := f.Open(t.Context(), fi, 2)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if string(b) != want || (i == 0) != errors.Is(err, errInjected) {
			t.Fatalf("read %d: %q, %v; want %q", i, b, err, want)
		}
	}
	calls := f.Calls(memstore.OpOpen)
	if len(calls) != 2 || calls[0].Off != 2 || calls[1].N != 2 || calls[0].Key() != s3backend.Key(fi) {
		t.Fatalf("calls %+v", calls)
	}
}

func TestFaultThen(t *testing.T) {
	s := memstore.New()
	f := memstore.Wrap(s)
	fi := put(t, s, info(0, 1, 1), "x")
	f.Inject(memstore.Fault{Op: memstore.OpList, Times: 1, Then: func(memstore.Call) {
		if err := s.Delete(t.Context(), []s3backend.FileInfo{fi}); err != nil {
			t.Error(err)
		}
	}})
	infos, err := f.List(t.Context(), "db", 0)
	if err != nil || len(infos) != 1 {
		t.Fatalf("List: %v, %v; want the listing from before the delete", infos, err)
	}
	if _, err := f.Open(t.Context(), infos[0], 0); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Open after the delete: %v, want ErrNotFound", err)
	}
}

func TestListOnly(t *testing.T) {
	s := memstore.ListOnly(memstore.New())
	if _, ok := s.(s3backend.Stater); ok {
		t.Error("ListOnly store is a Stater")
	}
	if _, ok := s.(s3backend.ConditionalWriter); ok {
		t.Error("ListOnly store is a ConditionalWriter")
	}
	if _, ok := s.(s3backend.ChangeReader); ok {
		t.Error("ListOnly store is a ChangeReader")
	}
}
