package wal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz inputs are kept small so that the reference parse after every
// operation stays cheap.
const (
	fuzzMaxWAL = 32 << 10
	fuzzMaxOps = 128
)

var fuzzChunks = []int{1, 3, 8, 13, 24, 32, 100, 488, 512, 536, 1000, 1024, 1048, 4096, 4120}

// FuzzCapture feeds arbitrary bytes through Wrote or Poll in arbitrary write
// splits, with in-place rewrites, damage and truncations, and checks after
// every operation that the capture never panics, never emits a transaction
// the reference parse (refParse: SQLite's recovery plus the pending-rewrite
// rule) would not replay at that moment, and holds exactly the committed
// index it would build.
//
// ops[0] is a mode byte: bit 0 reseals the header and frame checksums of wal
// first (so the fuzzer can explore structure behind valid checksums; frames
// with zero salts, a page number and no commit become pending-rewrite frames
// and the chain goes on from (0, 0) after them), bit 1
// selects Poll instead of Wrote. Each following byte is one operation:
// top two bits 0 or 1 append the next chunk of wal, 2 rewrites an earlier
// region with the same bytes (or truncates when the low bit is set), 3
// damages an earlier region.
func FuzzCapture(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.wal, s.ops)
	}
	f.Fuzz(fuzzCapture)
}

func fuzzCapture(t *testing.T, wal, ops []byte) {
	if len(wal) > fuzzMaxWAL || len(ops) > fuzzMaxOps {
		return
	}
	var mode byte
	if len(ops) > 0 {
		mode, ops = ops[0], ops[1:]
	}
	wal = append([]byte(nil), wal...)
	if mode&1 != 0 {
		resealAny(wal)
	}
	poll := mode&2 != 0

	file := &memFile{}
	sink := &recSink{}
	var ref []Txn // recovery's view of the file during the current operation
	refValid := false
	sink.check = func(txn *Txn, r io.ReaderAt) error {
		if !refValid {
			ref, _ = refParse(file.b)
			refValid = true
		}
		for _, want := range ref {
			if equalTxns([]Txn{*txn}, []Txn{want}) {
				return nil
			}
		}
		t.Fatalf("emitted a txn recovery would not replay: %d..%d commit %d pages %v",
			txn.Offset, txn.End, txn.Commit, txn.Pages)
		return nil
	}
	c := NewCapture(sink)
	pos := 0 // next byte of wal to append
	for i, op := range ops {
		refValid = false
		var off int64
		var n int
		switch kind := op >> 6; {
		case kind <= 1:
			n = min(fuzzChunks[int(op&63)%len(fuzzChunks)], len(wal)-pos)
			if n == 0 {
				continue
			}
			off = int64(pos)
			file.WriteAt(wal[pos:pos+n], off)
			pos += n
		case kind == 2 && op&1 == 1:
			size := file.Size() * int64(op&62) / 64
			file.Truncate(size)
			pos = min(pos, int(size))
			if poll {
				if err := c.Poll(file, size); err != nil {
					t.Fatalf("op %d: poll: %v", i, err)
				}
			} else {
				c.Truncated(size)
			}
			checkAgainstRef(t, c, file, i)
			continue
		default:
			lo, hi := int64(0), file.Size()
			if poll {
				// Poll sees rewrites of the header and of the open
				// transaction, not of committed frames (which SQLite
				// only overwrites after writing a new header).
				if op&1 == 1 {
					hi = min(hi, HeaderSize)
				} else {
					lo = c.Committed().End
				}
			}
			if lo >= hi {
				continue
			}
			off = lo + (hi-lo)*int64(op&63)/64
			n = int(min(int64(fuzzChunks[int(op)%len(fuzzChunks)]), hi-off))
			b := append([]byte(nil), file.b[off:off+int64(n)]...)
			if kind == 3 {
				for j := range b {
					b[j] ^= byte(0x5a + j)
				}
			} else if off < int64(len(wal)) {
				copy(b, wal[off:]) // the bytes meant for there
			}
			file.WriteAt(b, off)
		}
		var err error
		if poll {
			err = c.Poll(file, file.Size())
		} else {
			err = c.Wrote(file, off, n, file.Size())
		}
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		checkAgainstRef(t, c, file, i)
	}
	// Whole-file paths agree with the reference too.
	refTxns, refIdx := refParse(file.b)
	idx, err := NewCapture(nil).Load(file, file.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !equalIndex(idx, refIdx) {
		t.Fatalf("Load disagrees with the reference")
	}
	if got := stripData(parseAll(t, file.b)); !equalTxns(got, refTxns) {
		t.Fatalf("full parse disagrees with the reference")
	}
}

func checkAgainstRef(t *testing.T, c *Capture, file *memFile, op int) {
	t.Helper()
	_, want := refParse(file.b)
	if got := c.Committed(); !equalIndex(got, want) {
		t.Fatalf("op %d: committed index %+v, recovery would give %+v", op, got, want)
	}
}

// resealAny recomputes the header checksum and the checksums of every whole
// frame, if the header's page size is usable.
func resealAny(wal []byte) {
	if len(wal) < HeaderSize {
		return
	}
	ps := uint32(wal[8])<<24 | uint32(wal[9])<<16 | uint32(wal[10])<<8 | uint32(wal[11])
	resealHeader(wal)
	if ValidPageSize(ps) {
		reseal(wal, HeaderSize)
	}
}

type fuzzSeed struct{ wal, ops []byte }

// fuzzSeeds builds seeds from a real WAL prefix and from simulated SQLite
// histories. testdata/fuzz/FuzzCapture holds the same seeds, written by
// TestWriteFuzzSeeds.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	sqlite := fixture(t, "golden-512.wal.gz")
	sqlite = sqlite[:min(len(sqlite), int(FrameOffset(512, 14)))]

	f := &memFile{}
	w := newWALWriter(t, f, 512, true)
	w.header()
	w.frame(1, 0, w.page(1))
	w.frame(2, 2, w.page(2))
	w.frame(3, 0, w.page(3))
	w.overwrite(2, w.page(4))
	w.frame(2, 3, w.page(5))
	w.rewriteChecksums(2, nil)
	sim := f.b

	// SQLite 3.40.1 after SAVEPOINT, a spill and ROLLBACK TO (see
	// savepointHistory): a zeroed frame the commit does not rewrite.
	f = &memFile{}
	w = newWALWriter(t, f, 512, false)
	w.header()
	w.frame(1, 1, w.page(1))
	w.frame(2, 0, w.page(2))
	w.pending(3, 0, w.page(3))
	w.pending(4, 0, w.page(4))
	w.pending(1, 4, w.page(5))
	w.rewriteChecksums(3, nil)
	w.frame(2, 4, w.page(6))
	pending := f.b
	savepoint := fixture(t, "savepoint-512.wal.gz")

	appendAll := func(n int, chunk byte) []byte {
		ops := []byte{0}
		for range n {
			ops = append(ops, chunk)
		}
		return ops
	}
	mixed := []byte{1, 5, 5, 12, 8, 5, 8, 0x80 | 20, 5, 8, 0xc0 | 33, 5, 8, 5, 8, 0x81, 5, 8}
	return []fuzzSeed{
		{sqlite, appendAll(40, 9)},  // 536-byte chunks: frame-sized writes
		{sqlite, appendAll(80, 13)}, // 4120-byte chunks
		{sqlite, mixed},
		{sim, appendAll(30, 4)}, // 24-byte chunks
		{sim, append([]byte{2}, mixed[1:]...)},
		{sim, append([]byte{3}, mixed[1:]...)},
		{pending, appendAll(30, 4)},
		{pending, append([]byte{3}, mixed[1:]...)},
		{savepoint, appendAll(30, 9)},
		{savepoint, mixed},
	}
}

// TestFuzzSeedsCheckedIn keeps testdata/fuzz/FuzzCapture equal to the seeds
// fuzzSeeds builds; WALFS_WRITE_FUZZ_SEEDS=1 rewrites them (needed after
// testdata/gen.py regenerated the fixtures).
func TestFuzzSeedsCheckedIn(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzCapture")
	write := os.Getenv("WALFS_WRITE_FUZZ_SEEDS") == "1"
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range fuzzSeeds(t) {
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s.wal, s.ops)
		if write {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != body {
			t.Errorf("%s is missing or stale (%v): run WALFS_WRITE_FUZZ_SEEDS=1 go test -run TestFuzzSeedsCheckedIn ./wal/", path, err)
		}
	}
}
