package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

// savepointHistory writes, through h's writer, what SQLite 3.40.1 writes for
//
//	BEGIN; <one frame>; SAVEPOINT a; <spill, overwrite, spill>; ROLLBACK TO a;
//	<four frames>; COMMIT
//
// after one committed transaction: the overwrite leaves iReCksum at frame 4,
// ROLLBACK TO moves the end back to frame 3 without clearing it, so frame 3
// is appended with a zeroed header that the commit never rewrites, and the
// commit rewrites frames 4.. from the (0, 0) stored in frame 3. check runs
// after each header rewrite of the commit (i is the frame rewritten).
func savepointHistory(h *harness, check func(i int64)) {
	w := h.w
	w.header()
	w.frame(1, 0, w.page(1)) // frame 0
	w.frame(2, 2, w.page(2)) // frame 1: txn 1
	h.wantEmitted(1, "txn 1")

	w.frame(3, 0, w.page(3)) // frame 2, before the savepoint
	w.frame(4, 0, w.page(4)) // frame 3, spilled after it
	w.frame(5, 0, w.page(5)) // frame 4
	w.overwrite(4, w.page(50))
	w.pending(6, 0, w.page(6)) // frame 5: iReCksum is set
	h.wantEmitted(1, "spill")
	w.rollback(3) // ROLLBACK TO a: iReCksum stays 4

	w.pending(7, 0, w.page(7))  // frame 3: never rewritten
	w.pending(8, 0, w.page(8))  // frame 4
	w.pending(9, 0, w.page(9))  // frame 5
	w.pending(1, 9, w.page(10)) // frame 6: commit frame, zeroed for now
	h.wantEmitted(1, "zeroed commit frame")
	w.rewriteChecksums(4, check)
}

// TestPendingRewriteFrame: a transaction whose chain restarts from (0, 0)
// after a zeroed frame is emitted once its commit frame validates, with the
// zeroed frame's page, and the transactions after it too. SQLite's recovery
// (refParseStrict) would replay only the first.
func TestPendingRewriteFrame(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		w := h.w
		savepointHistory(h, func(i int64) {
			if i < w.n-1 {
				h.wantEmitted(1, fmt.Sprintf("frame %d rewritten", i))
			}
		})
		h.wantEmitted(2, "commit frame rewritten")
		got := h.sink.txns[1]
		if got.Offset != FrameOffset(512, 2) || got.End != FrameOffset(512, 7) || got.Commit != 9 {
			t.Fatalf("txn 2: %d..%d commit %d", got.Offset, got.End, got.Commit)
		}
		if pgnos := pageNumbers(got.Txn); !slices.Equal(pgnos, []uint32{1, 3, 7, 8, 9}) {
			t.Fatalf("txn 2 pages %v", pgnos)
		}
		if !bytes.Equal(got.data[7], w.page(7)) || !bytes.Equal(got.data[1], w.page(10)) {
			t.Errorf("txn 2: page data differs from what was written")
		}

		w.frame(2, 9, w.page(11)) // the next transaction chains on normally
		h.wantEmitted(3, "next txn")

		strict, _ := refParseStrict(h.f.b)
		if len(strict) != 1 {
			t.Fatalf("recovery would replay %d txns, want 1 (the quirk this covers)", len(strict))
		}
		ref, refIdx := refParse(h.f.b)
		diffTxns(t, "emitted vs reference", stripData(h.sink.txns), ref)
		idx, err := NewCapture(nil).Load(h.f, h.f.Size())
		if err != nil {
			t.Fatal(err)
		}
		diffIndex(t, "Load", idx, refIdx)
		if idx.DBSize != 9 || idx.Pages[7] != FrameOffset(512, 3)+FrameHeaderSize {
			t.Errorf("Load: db size %d, page 7 at %d", idx.DBSize, idx.Pages[7])
		}
		diffTxns(t, "full parse", stripData(parseAll(t, h.f.b)), ref)
	})
}

// TestPendingRewriteFirstFrame: the zeroed frame is the first of the
// generation (SQLite restarted the WAL in the same transaction).
func TestPendingRewriteFirstFrame(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 1024, be, poll)
		w := h.w
		w.header()
		w.pending(5, 0, w.page(1)) // frame 0
		w.pending(6, 0, w.page(2)) // frame 1
		w.pending(1, 6, w.page(3)) // frame 2
		w.rewriteChecksums(1, nil) // from the (0, 0) in frame 0
		h.wantEmitted(1, "txn")
		if got := h.sink.txns[0]; got.Offset != HeaderSize || !slices.Equal(pageNumbers(got.Txn), []uint32{1, 5, 6}) {
			t.Fatalf("txn at %d pages %v", got.Offset, pageNumbers(got.Txn))
		}
		if strict, _ := refParseStrict(h.f.b); len(strict) != 0 {
			t.Fatalf("recovery replays %d txns", len(strict))
		}
	})
}

// TestPendingRewriteRuns: several zeroed frames in a row; the chain resumes
// after the last of them.
func TestPendingRewriteRuns(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		w := h.w
		w.header()
		w.frame(1, 1, w.page(1))
		for i := range 4 {
			w.pending(uint32(2+i), 0, w.page(2+i)) // frames 1..4
		}
		w.pending(7, 0, w.page(7)) // frame 5
		w.pending(1, 7, w.page(8)) // frame 6
		w.rewriteChecksums(5, nil) // from the (0, 0) in frame 4
		h.wantEmitted(2, "txn after four zeroed frames")
		if got := h.sink.txns[1]; !slices.Equal(pageNumbers(got.Txn), []uint32{1, 2, 3, 4, 5, 7}) {
			t.Fatalf("pages %v", pageNumbers(got.Txn))
		}
	})
}

// TestPendingRewriteNotTrusted: zeroed frames that do not fit the rule, or a
// chain after them that does not start from (0, 0), commit nothing: the
// capture agrees with the reference parse, which stops where recovery does.
func TestPendingRewriteNotTrusted(t *testing.T) {
	// base: txn 1 (frame 0), then frames 1..3 with frame 1 zeroed and 2..3
	// chained from (0, 0), frame 3 committing.
	base := func(t *testing.T) *walWriter {
		f := &memFile{}
		w := newWALWriter(t, f, 512, false)
		w.header()
		w.frame(1, 1, w.page(1))
		w.pending(2, 0, w.page(2))
		w.pending(3, 0, w.page(3))
		w.pending(4, 4, w.page(4))
		w.rewriteChecksums(2, nil)
		return w
	}
	mem := func(w *walWriter) []byte { return w.f.(*memFile).b }
	put := func(b []byte, frame, field int, v uint32) {
		binary.BigEndian.PutUint32(b[FrameOffset(512, int64(frame))+int64(4*field):], v)
	}
	cases := []struct {
		name   string
		damage func(w *walWriter, b []byte)
		want   int // txns recovery + the rule replay
	}{
		{"as written", func(w *walWriter, b []byte) {}, 2},
		{"zeroed frame with a checksum", func(w *walWriter, b []byte) { put(b, 1, 5, 1) }, 1},
		{"zeroed frame with one salt", func(w *walWriter, b []byte) { put(b, 1, 2, w.salt1) }, 1},
		{"zeroed frame without page number", func(w *walWriter, b []byte) { put(b, 1, 0, 0) }, 1},
		{"zeroed commit frame", func(w *walWriter, b []byte) {
			put(b, 1, 1, 4) // the zeroed frame claims a commit: never trusted
		}, 1},
		{"chain after it not from (0, 0)", func(w *walWriter, b []byte) {
			// Frames 2..3 resealed from frame 0's checksum, as if frame 1
			// were not there.
			var s1, s2 uint32 = binary.BigEndian.Uint32(b[FrameOffset(512, 0)+16:]), binary.BigEndian.Uint32(b[FrameOffset(512, 0)+20:])
			for i := int64(2); i <= 3; i++ {
				off := FrameOffset(512, i)
				s1, s2 = Checksum(false, s1, s2, b[off:off+8])
				s1, s2 = Checksum(false, s1, s2, b[off+FrameHeaderSize:off+FrameHeaderSize+512])
				binary.BigEndian.PutUint32(b[off+16:], s1)
				binary.BigEndian.PutUint32(b[off+20:], s2)
			}
		}, 1},
		{"chain after it with other salts", func(w *walWriter, b []byte) {
			put(b, 2, 3, w.salt2+1) // salts are not checksummed
		}, 1},
		{"page after it damaged", func(w *walWriter, b []byte) {
			b[FrameOffset(512, 2)+FrameHeaderSize+7] ^= 1
		}, 1},
		{"zeroed frame's page damaged", func(w *walWriter, b []byte) {
			// Not checksummed: the live connection reads whatever is there.
			b[FrameOffset(512, 1)+FrameHeaderSize+7] ^= 1
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := base(t)
			wal := mem(w)
			c.damage(w, wal)
			ref, refIdx := refParse(wal)
			if len(ref) != c.want {
				t.Fatalf("reference parse: %d txns, want %d", len(ref), c.want)
			}
			if strict, _ := refParseStrict(wal); len(strict) != 1 {
				t.Fatalf("strict parse: %d txns", len(strict))
			}
			diffTxns(t, "full parse", stripData(parseAll(t, wal)), ref)
			idx, err := NewCapture(nil).Load(&memFile{wal}, int64(len(wal)))
			if err != nil {
				t.Fatal(err)
			}
			diffIndex(t, "Load", idx, refIdx)
			for _, mode := range replayModes {
				for _, poll := range []bool{false, true} {
					got, idx := replay(t, wal, mode, poll)
					diffTxns(t, "replay "+mode.name, got, ref)
					diffIndex(t, "replay "+mode.name, idx, refIdx)
				}
			}
		})
	}
}

// TestPendingRewriteCommittedRewrite: a committed zeroed frame rewritten in
// place with the same bytes keeps the committed state; rewritten with a
// checksum it goes back to the last commit before it.
func TestPendingRewriteCommittedRewrite(t *testing.T) {
	h := newHarness(t, 512, false, false)
	w := h.w
	savepointHistory(h, nil)
	h.wantEmitted(2, "setup")
	hdr := slices.Clone(h.f.b[FrameOffset(512, 3):][:FrameHeaderSize])
	w.write(FrameOffset(512, 3), hdr) // same bytes
	h.wantEmitted(2, "same bytes")
	if got := h.c.Committed().DBSize; got != 9 {
		t.Fatalf("db size %d", got)
	}
	bad := slices.Clone(hdr)
	bad[23] = 1
	w.write(FrameOffset(512, 3), bad) // checked by the harness against refParse
	if got := h.c.Committed().DBSize; got != 2 {
		t.Fatalf("db size %d after the zeroed frame got a checksum", got)
	}
	w.write(FrameOffset(512, 3), hdr)
	h.wantEmitted(3, "restored")
}
