package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// LargeSize is the size of the object the suite writes to exercise multipart
// uploads: above 16 MiB, not a multiple of any usual part size.
const LargeSize = 17<<20 + 12345

// Run runs every conformance test against stores made by newStore. Each call
// of newStore must return an empty store (a fresh directory or a fresh key
// prefix) that is not yet initialized; cleanup is the caller's business
// (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) s3backend.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s s3backend.Store)
	}{
		{"InitIdempotent", testInitIdempotent},
		{"Empty", testEmpty},
		{"OpenNotFound", testOpenNotFound},
		{"WriteOpenList", testWriteOpenList},
		{"EmptyObject", testEmptyObject},
		{"Overwrite", testOverwrite},
		{"ListSortedAndSeparated", testListSorted},
		{"RangedOpen", testRangedOpen},
		{"NestedDatabases", testNestedDatabases},
		{"Delete", testDelete},
		{"InvalidFileInfo", testInvalidFileInfo},
		{"SizeMismatchStoresNothing", testSizeMismatch},
		{"FailingReaderStoresNothing", testFailingReader},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"Concurrent", testConcurrent},
		{"CreatedAt", testCreatedAt},
		{"Large", testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if err := s.Init(t.Context()); err != nil {
				t.Fatalf("Init: %v", err)
			}
			tt.fn(t, s)
		})
	}
}

func info(db string, level int, minTXID, maxTXID uint64) s3backend.FileInfo {
	return s3backend.FileInfo{DB: db, Level: level, MinTXID: minTXID, MaxTXID: maxTXID}
}

func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func write(t *testing.T, s s3backend.Store, fi s3backend.FileInfo, data []byte) s3backend.FileInfo {
	t.Helper()
	got, err := s.Write(t.Context(), fi, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Write %s: %v", s3backend.Key(fi), err)
	}
	if got.Size != int64(len(data)) {
		t.Fatalf("Write %s: got Size %d, want %d", s3backend.Key(fi), got.Size, len(data))
	}
	return got
}

func read(t *testing.T, s s3backend.Store, fi s3backend.FileInfo, off int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), fi, off)
	if err != nil {
		t.Fatalf("Open %s at %d: %v", s3backend.Key(fi), off, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s at %d: %v", s3backend.Key(fi), off, err)
	}
	return b
}

func list(t *testing.T, s s3backend.Store, db string, level int) []s3backend.FileInfo {
	t.Helper()
	infos, err := s.List(t.Context(), db, level)
	if err != nil {
		t.Fatalf("List(%q, %d): %v", db, level, err)
	}
	return infos
}

// keys reduces infos to what every store must report identically.
func keys(infos []s3backend.FileInfo) []string {
	out := make([]string, len(infos))
	for i, fi := range infos {
		out[i] = fmt.Sprintf("%s size=%d", s3backend.Key(fi), fi.Size)
	}
	return out
}

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

func testInvalidFileInfo(t *testing.T, s s3backend.Store) {
	for _, fi := range []s3backend.FileInfo{
		info("db", 0, 0, 1),
		info("db", 0, 5, 4),
		info("db", -1, 1, 1),
		info("db", 10, 1, 1),
		info("../escape", 0, 1, 1),
		info("/abs", 0, 1, 1),
		info("a//b", 0, 1, 1),
		info("a/./b", 0, 1, 1),
		info("db/", 0, 1, 1),
	} {
		_, err := s.Write(t.Context(), fi, bytes.NewReader([]byte("x")), 1)
		if !errors.Is(err, s3backend.ErrInvalidFileInfo) {
			t.Errorf("Write %+v: got %v, want ErrInvalidFileInfo", fi, err)
		}
		if _, err := s.Open(t.Context(), fi, 0); !errors.Is(err, s3backend.ErrInvalidFileInfo) {
			t.Errorf("Open %+v: got %v, want ErrInvalidFileInfo", fi, err)
		}
	}
	if _, err := s.List(t.Context(), "../x", 0); !errors.Is(err, s3backend.ErrInvalidFileInfo) {
		t.Errorf("List(../x): got %v, want ErrInvalidFileInfo", err)
	}
	dbs, err := s.ListDatabases(t.Context())
	if err != nil || len(dbs) != 0 {
		t.Fatalf("ListDatabases after invalid writes: got %q, %v; want none", dbs, err)
	}
}

func testSizeMismatch(t *testing.T, s s3backend.Store) {
	cases := []struct {
		name string
		data []byte
		size int64
	}{
		{"short small", []byte("abc"), 4},
		{"long small", []byte("abcde"), 4},
		{"short large", payload(3, 6<<20), 6<<20 + 1},
		{"long large", payload(4, 6<<20+1), 6 << 20},
	}
	for i, c := range cases {
		fi := info("db", 0, uint64(i+1), uint64(i+1))
		_, err := s.Write(t.Context(), fi, bytes.NewReader(c.data), c.size)
		if !errors.Is(err, s3backend.ErrSizeMismatch) {
			t.Errorf("%s: Write got %v, want ErrSizeMismatch", c.name, err)
		}
		if _, err := s.Open(t.Context(), fi, 0); !errors.Is(err, s3backend.ErrNotFound) {
			t.Errorf("%s: Open after failed write: got %v, want ErrNotFound", c.name, err)
		}
	}
	if g := list(t, s, "db", 0); len(g) != 0 {
		t.Fatalf("List after failed writes: got %q, want none", keys(g))
	}
}

var errBoom = errors.New("storetest: reader failed")

type failingReader struct {
	r     io.Reader
	after int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errBoom
	}
	if len(p) > f.after {
		p = p[:f.after]
	}
	n, err := f.r.Read(p)
	f.after -= n
	return n, err
}

func testFailingReader(t *testing.T, s s3backend.Store) {
	for i, n := range []int{100, 7 << 20} {
		fi := info("db", 0, uint64(i+1), uint64(i+1))
		data := payload(5, n)
		r := &failingReader{r: bytes.NewReader(data), after: n / 2}
		if _, err := s.Write(t.Context(), fi, r, int64(n)); !errors.Is(err, errBoom) {
			t.Errorf("Write with failing reader (%d bytes): got %v, want the reader's error", n, err)
		}
		if _, err := s.Open(t.Context(), fi, 0); !errors.Is(err, s3backend.ErrNotFound) {
			t.Errorf("Open after failed write: got %v, want ErrNotFound", err)
		}
	}
	// A failed overwrite keeps the old content.
	fi := info("db", 9, 1, 1)
	write(t, s, fi, []byte("old"))
	if _, err := s.Write(t.Context(), fi, &failingReader{r: bytes.NewReader([]byte("newer")), after: 2}, 5); err == nil {
		t.Fatal("failed overwrite: got nil error")
	}
	if b := read(t, s, fi, 0); string(b) != "old" {
		t.Fatalf("after failed overwrite: got %q, want %q", b, "old")
	}
}

func testAtomicOverwrite(t *testing.T, s s3backend.Store) {
	// Readers racing an overwrite see one whole version, never a mix or a
	// prefix. Both versions are the same size so a torn read would go unseen
	// by size checks alone.
	const n = 256 << 10
	versions := [][]byte{payload(6, n), payload(7, n)}
	fi := info("db", 0, 1, 1)
	write(t, s, fi, versions[0])
	ctx := t.Context()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(stop)
		for i := range 8 {
			v := versions[(i+1)%2]
			if _, err := s.Write(ctx, fi, bytes.NewReader(v), n); err != nil {
				errc <- fmt.Errorf("overwrite %d: %w", i, err)
				return
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rc, err := s.Open(ctx, fi, 0)
				if err != nil {
					errc <- fmt.Errorf("open during overwrite: %w", err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errc <- fmt.Errorf("read during overwrite: %w", err)
					return
				}
				if !bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1]) {
					errc <- fmt.Errorf("torn read: %d bytes matching neither version", len(b))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func testConcurrent(t *testing.T, s s3backend.Store) {
	const writers, perWriter = 8, 6
	ctx := t.Context()
	var wg sync.WaitGroup
	errc := make(chan error, writers*perWriter+writers)
	for w := range writers {
		wg.Go(func() {
			db := fmt.Sprintf("c/db%d", w%3)
			for i := range perWriter {
				id := uint64(w*perWriter + i + 1)
				fi := info(db, 0, id, id)
				if _, err := s.Write(ctx, fi, bytes.NewReader([]byte(s3backend.Key(fi))), int64(len(s3backend.Key(fi)))); err != nil {
					errc <- err
					return
				}
				if _, err := s.List(ctx, db, 0); err != nil {
					errc <- err
					return
				}
				if _, err := s.ListDatabases(ctx); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	total := 0
	for d := range 3 {
		db := fmt.Sprintf("c/db%d", d)
		infos := list(t, s, db, 0)
		total += len(infos)
		for _, fi := range infos {
			if b := read(t, s, fi, 0); string(b) != s3backend.Key(fi) {
				t.Fatalf("Open %s: got %q", s3backend.Key(fi), b)
			}
		}
	}
	if total != writers*perWriter {
		t.Fatalf("after concurrent writes: %d objects, want %d", total, writers*perWriter)
	}
	dbs, err := s.ListDatabases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c/db0", "c/db1", "c/db2"}; !slices.Equal(dbs, want) {
		t.Fatalf("ListDatabases: got %q, want %q", dbs, want)
	}
}

func testCreatedAt(t *testing.T, s s3backend.Store) {
	// A commit time well in the past with sub-millisecond digits.
	createdAt := time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.FixedZone("x", 3600))
	fi := info("db", 0, 1, 1)
	fi.CreatedAt = createdAt
	before := time.Now()
	got := write(t, s, fi, []byte("t"))
	after := time.Now()
	if !sameMillis(got.CreatedAt, createdAt) {
		t.Fatalf("Write returned CreatedAt %v, want %v", got.CreatedAt, createdAt)
	}
	if st, ok := s.(s3backend.Stater); ok {
		sfi, err := st.Stat(t.Context(), fi)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if !sameMillis(sfi.CreatedAt, createdAt) {
			t.Fatalf("Stat CreatedAt: got %v, want %v", sfi.CreatedAt, createdAt)
		}
		if sfi.Size != 1 {
			t.Fatalf("Stat Size: got %d, want 1", sfi.Size)
		}
	}
	// List reports either the stored commit time or, for stores that list
	// without metadata, the upload time (server clock, second precision).
	infos := list(t, s, "db", 0)
	if len(infos) != 1 {
		t.Fatalf("List: got %d files, want 1", len(infos))
	}
	lc := infos[0].CreatedAt
	if !sameMillis(lc, createdAt) && (lc.Before(before.Add(-2*time.Second)) || lc.After(after.Add(2*time.Second))) {
		t.Fatalf("List CreatedAt %v is neither the written %v nor the upload time [%v, %v]", lc, createdAt, before, after)
	}

	// A zero CreatedAt is filled with the write time.
	fi2 := info("db", 0, 2, 2)
	got2 := write(t, s, fi2, []byte("u"))
	if got2.CreatedAt.IsZero() {
		t.Fatal("Write with zero CreatedAt returned zero CreatedAt")
	}
	if st, ok := s.(s3backend.Stater); ok {
		sfi, err := st.Stat(t.Context(), fi2)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if !sameMillis(sfi.CreatedAt, got2.CreatedAt) {
			t.Fatalf("Stat CreatedAt: got %v, want %v", sfi.CreatedAt, got2.CreatedAt)
		}
	}
}

func sameMillis(a, b time.Time) bool {
	return a.UnixMilli() == b.UnixMilli()
}

func testLarge(t *testing.T, s s3backend.Store) {
	if testing.Short() {
		t.Skip("large object test skipped in -short mode")
	}
	data := payload(8, LargeSize)
	fi := info("big.db", 9, 1, 1000)
	fi.CreatedAt = time.UnixMilli(1700000000123)
	got := write(t, s, fi, data)
	if !sameMillis(got.CreatedAt, fi.CreatedAt) {
		t.Fatalf("Write CreatedAt: got %v, want %v", got.CreatedAt, fi.CreatedAt)
	}
	b := read(t, s, fi, 0)
	if sha256.Sum256(b) != sha256.Sum256(data) {
		t.Fatalf("large object content differs (got %d bytes, want %d)", len(b), len(data))
	}
	off := int64(LargeSize - 3<<20 - 7) // inside a later part
	if b := read(t, s, fi, off); !bytes.Equal(b, data[off:]) {
		t.Fatalf("large ranged read at %d: got %d bytes, want %d", off, len(b), int64(len(data))-off)
	}
	if g, w := keys(list(t, s, "big.db", 9)), []string{fmt.Sprintf("big.db/0009/0000000000000001-00000000000003e8.ltx size=%d", LargeSize)}; !slices.Equal(g, w) {
		t.Fatalf("List: got %q, want %q", g, w)
	}
	if st, ok := s.(s3backend.Stater); ok {
		sfi, err := st.Stat(t.Context(), fi)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if !sameMillis(sfi.CreatedAt, fi.CreatedAt) {
			t.Fatalf("Stat CreatedAt of multipart object: got %v, want %v", sfi.CreatedAt, fi.CreatedAt)
		}
	}
}
