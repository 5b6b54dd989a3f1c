package storetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

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

// payload returns n deterministic pseudo-random bytes.
func payload(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
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
