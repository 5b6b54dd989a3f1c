package storetest

// Cases for the basic contracts: not found, empty lists, writes, overwrites,
// ranged reads, nested databases and deletes.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/walfs/walfs/s3backend"
)

func testInitIdempotent(t *testing.T, s s3backend.Store) {
	for i := range 3 {
		if err := s.Init(t.Context()); err != nil {
			t.Fatalf("Init #%d: %v", i+2, err)
		}
	}
	fi := write(t, s, info("db", 0, 1, 1), []byte("x"))
	if err := s.Init(t.Context()); err != nil {
		t.Fatalf("Init after write: %v", err)
	}
	if got := read(t, s, fi, 0); string(got) != "x" {
		t.Fatalf("after re-Init: got %q, want %q", got, "x")
	}
	if s.String() == "" {
		t.Error("String() is empty")
	}
}

func testEmpty(t *testing.T, s s3backend.Store) {
	dbs, err := s.ListDatabases(t.Context())
	if err != nil {
		t.Fatalf("ListDatabases: %v", err)
	}
	if len(dbs) != 0 {
		t.Fatalf("ListDatabases on empty store: got %q, want none", dbs)
	}
	for _, db := range []string{"", "db", "a/b/c.db"} {
		for _, level := range []int{0, 1, 3, 9} {
			infos := list(t, s, db, level)
			if infos == nil || len(infos) != 0 {
				t.Fatalf("List(%q, %d) on empty store: got %#v, want empty non-nil slice", db, level, infos)
			}
		}
	}
}

func testOpenNotFound(t *testing.T, s s3backend.Store) {
	write(t, s, info("db", 0, 1, 1), []byte("present"))
	for _, fi := range []s3backend.FileInfo{
		info("db", 0, 2, 2),
		info("db", 1, 1, 1),
		info("other", 0, 1, 1),
		info("", 0, 1, 1),
	} {
		rc, err := s.Open(t.Context(), fi, 0)
		if err == nil {
			rc.Close()
			t.Fatalf("Open missing %s: got nil error", s3backend.Key(fi))
		}
		if !errors.Is(err, s3backend.ErrNotFound) {
			t.Fatalf("Open missing %s: got %v, want ErrNotFound", s3backend.Key(fi), err)
		}
		rc, err = s.Open(t.Context(), fi, 3)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, s3backend.ErrNotFound) {
			t.Fatalf("Open missing %s at 3: got %v, want ErrNotFound", s3backend.Key(fi), err)
		}
	}
	if st, ok := s.(s3backend.Stater); ok {
		if _, err := st.Stat(t.Context(), info("db", 0, 2, 2)); !errors.Is(err, s3backend.ErrNotFound) {
			t.Fatalf("Stat missing: got %v, want ErrNotFound", err)
		}
	}
}

func testWriteOpenList(t *testing.T, s s3backend.Store) {
	data := payload(1, 4096+100)
	fi := info("app.db", 0, 1, 5)
	got := write(t, s, fi, data)
	if got.DB != fi.DB || got.Level != fi.Level || got.MinTXID != fi.MinTXID || got.MaxTXID != fi.MaxTXID {
		t.Fatalf("Write returned %+v, want identity of %+v", got, fi)
	}
	if b := read(t, s, fi, 0); !bytes.Equal(b, data) {
		t.Fatalf("Open: content differs (got %d bytes, want %d)", len(b), len(data))
	}
	infos := list(t, s, "app.db", 0)
	if g, w := keys(infos), []string{fmt.Sprintf("app.db/0000/0000000000000001-0000000000000005.ltx size=%d", len(data))}; !slices.Equal(g, w) {
		t.Fatalf("List: got %q, want %q", g, w)
	}
	if infos[0].CreatedAt.IsZero() {
		t.Fatal("List: CreatedAt is zero")
	}
	dbs, err := s.ListDatabases(t.Context())
	if err != nil {
		t.Fatalf("ListDatabases: %v", err)
	}
	if want := []string{"app.db"}; !slices.Equal(dbs, want) {
		t.Fatalf("ListDatabases: got %q, want %q", dbs, want)
	}
}

func testEmptyObject(t *testing.T, s s3backend.Store) {
	fi := info("db", 0, 1, 1)
	write(t, s, fi, nil)
	if b := read(t, s, fi, 0); len(b) != 0 {
		t.Fatalf("Open empty object: got %d bytes", len(b))
	}
	if g, w := keys(list(t, s, "db", 0)), []string{"db/0000/0000000000000001-0000000000000001.ltx size=0"}; !slices.Equal(g, w) {
		t.Fatalf("List: got %q, want %q", g, w)
	}
}

func testOverwrite(t *testing.T, s s3backend.Store) {
	fi := info("db", 9, 1, 10)
	write(t, s, fi, []byte("first version, longer"))
	write(t, s, fi, []byte("second"))
	if b := read(t, s, fi, 0); string(b) != "second" {
		t.Fatalf("after overwrite: got %q, want %q", b, "second")
	}
	if g, w := keys(list(t, s, "db", 9)), []string{"db/0009/0000000000000001-000000000000000a.ltx size=6"}; !slices.Equal(g, w) {
		t.Fatalf("List after overwrite: got %q, want %q", g, w)
	}
}

func testListSorted(t *testing.T, s s3backend.Store) {
	// Written out of order, across levels and a neighbouring database whose
	// name shares a prefix.
	for _, fi := range []s3backend.FileInfo{
		info("db", 0, 0x10, 0x10), info("db", 0, 2, 3), info("db", 0, 0x100, 0x1ff),
		info("db", 0, 4, 0xf), info("db", 1, 1, 0xf), info("db", 3, 1, 0x1ff),
		info("db2", 0, 1, 1), info("db/x", 0, 7, 7),
	} {
		write(t, s, fi, []byte(s3backend.Key(fi)))
	}
	want := []string{
		"db/0000/0000000000000002-0000000000000003.ltx size=45",
		"db/0000/0000000000000004-000000000000000f.ltx size=45",
		"db/0000/0000000000000010-0000000000000010.ltx size=45",
		"db/0000/0000000000000100-00000000000001ff.ltx size=45",
	}
	if g := keys(list(t, s, "db", 0)); !slices.Equal(g, want) {
		t.Fatalf("List(db, 0):\n got %q\nwant %q", g, want)
	}
	if g, w := keys(list(t, s, "db", 1)), []string{"db/0001/0000000000000001-000000000000000f.ltx size=45"}; !slices.Equal(g, w) {
		t.Fatalf("List(db, 1): got %q, want %q", g, w)
	}
	if g := list(t, s, "db", 2); len(g) != 0 {
		t.Fatalf("List(db, 2): got %q, want none", keys(g))
	}
	for _, fi := range list(t, s, "db", 0) {
		if b := read(t, s, fi, 0); string(b) != s3backend.Key(fi) {
			t.Fatalf("listed info %s opens %q", s3backend.Key(fi), b)
		}
	}
}

func testRangedOpen(t *testing.T, s s3backend.Store) {
	data := payload(2, 10000)
	fi := info("db", 0, 1, 1)
	write(t, s, fi, data)
	for _, off := range []int64{0, 1, 4096, 9999, 10000} {
		if b := read(t, s, fi, off); !bytes.Equal(b, data[off:]) {
			t.Fatalf("Open at %d: got %d bytes, want %d (or content differs)", off, len(b), len(data)-int(off))
		}
	}
	rc, err := s.Open(t.Context(), fi, 10001)
	if err == nil {
		b, rerr := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("Open past end: got %d bytes, err %v; want ErrInvalidRange", len(b), rerr)
	}
	if !errors.Is(err, s3backend.ErrInvalidRange) {
		t.Fatalf("Open past end: got %v, want ErrInvalidRange", err)
	}
}

func testNestedDatabases(t *testing.T, s s3backend.Store) {
	dbs := []string{"sub/dir/app.db", "", "app.db", "sub/other.db", "sub/dir/app.db-shadow"}
	for i, db := range dbs {
		write(t, s, info(db, 0, 1, uint64(i+1)), []byte(db))
		write(t, s, info(db, 9, 1, uint64(i+1)), []byte(db))
	}
	got, err := s.ListDatabases(t.Context())
	if err != nil {
		t.Fatalf("ListDatabases: %v", err)
	}
	want := slices.Clone(dbs)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ListDatabases: got %q, want %q", got, want)
	}
	for i, db := range dbs {
		infos := list(t, s, db, 0)
		if len(infos) != 1 || infos[0].DB != db || infos[0].MaxTXID != uint64(i+1) {
			t.Fatalf("List(%q, 0): got %+v, want only its own file", db, infos)
		}
		if b := read(t, s, infos[0], 0); string(b) != db {
			t.Fatalf("Open %s: got %q, want %q", s3backend.Key(infos[0]), b, db)
		}
	}
}

func testDelete(t *testing.T, s s3backend.Store) {
	a, b, c := info("db", 0, 1, 1), info("db", 0, 2, 2), info("db", 0, 3, 3)
	write(t, s, a, []byte("a"))
	write(t, s, b, []byte("b"))
	if err := s.Delete(t.Context(), nil); err != nil {
		t.Fatalf("Delete(nil): %v", err)
	}
	if err := s.Delete(t.Context(), []s3backend.FileInfo{c}); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
	if err := s.Delete(t.Context(), []s3backend.FileInfo{a, c}); err != nil {
		t.Fatalf("Delete mixed: %v", err)
	}
	if g, w := keys(list(t, s, "db", 0)), []string{"db/0000/0000000000000002-0000000000000002.ltx size=1"}; !slices.Equal(g, w) {
		t.Fatalf("List after delete: got %q, want %q", g, w)
	}
	if _, err := s.Open(t.Context(), a, 0); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Open deleted: got %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), []s3backend.FileInfo{a, b}); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	dbs, err := s.ListDatabases(t.Context())
	if err != nil {
		t.Fatalf("ListDatabases: %v", err)
	}
	if len(dbs) != 0 {
		t.Fatalf("ListDatabases after deleting everything: got %q, want none", dbs)
	}
	// Many at once (S3 stores batch deletes).
	var many []s3backend.FileInfo
	for i := range 25 {
		fi := info("many", 0, uint64(i+1), uint64(i+1))
		write(t, s, fi, []byte{byte(i)})
		many = append(many, fi)
	}
	if err := s.Delete(t.Context(), many); err != nil {
		t.Fatalf("Delete many: %v", err)
	}
	if g := list(t, s, "many", 0); len(g) != 0 {
		t.Fatalf("List after Delete many: got %q", keys(g))
	}
}
