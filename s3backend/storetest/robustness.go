package storetest

// Cases for failure and edge behaviour: invalid input, short and failing
// readers, atomicity under concurrent readers, concurrency, CreatedAt and
// large (multipart) objects.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
)

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
