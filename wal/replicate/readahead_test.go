package replicate

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestReadAheadMatchesFile checks that readAhead returns what the file holds
// for any read a poll may make: header, frames, pages, past the end.
func TestReadAheadMatchesFile(t *testing.T) {
	data := make([]byte, 3*readAheadSize+1234)
	rng := rand.New(rand.NewSource(1))
	rng.Read(data)
	path := filepath.Join(t.TempDir(), "x.db-wal")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra := newReadAhead(f, int64(len(data)))
	defer ra.release()
	off := int64(32)
	for i := range 2000 {
		n := []int{24, 4096, 4120, 32, 1, 65536 + 24}[rng.Intn(6)]
		switch rng.Intn(4) {
		case 0:
			off = int64(rng.Intn(len(data) + 100)) // anywhere, also past the end
		case 1:
			off = 0 // the header
		default:
			off += int64(n) // sequential, as a poll reads
		}
		want := make([]byte, n)
		wn, werr := f.ReadAt(want, off)
		if rng.Intn(2) == 0 {
			// Peek lends the same bytes, or nothing: ReadAt then.
			if p := ra.Peek(off, n); p != nil && (len(p) != n || wn != n || !bytes.Equal(p, want)) {
				t.Fatalf("read %d: Peek(%d bytes at %d) lent %d bytes that are not the file's (%d, %v)", i, n, off, len(p), wn, werr)
			} else if p == nil && off >= 32 && off+int64(n) <= int64(len(data)) && n <= readAheadSize {
				t.Fatalf("read %d: Peek(%d bytes at %d) lent nothing for bytes the buffer can hold", i, n, off)
			}
			continue
		}
		got := make([]byte, n)
		gn, gerr := ra.ReadAt(got, off)
		if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) {
			t.Fatalf("read %d: ReadAt(%d bytes at %d) = %d, %v; file gives %d, %v", i, n, off, gn, gerr, wn, werr)
		}
		if gerr != nil && gerr != io.EOF {
			t.Fatalf("read %d: unexpected error %v", i, gerr)
		}
	}
}
