package wal

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// harness drives a Capture from a walWriter: after every write() the writer
// makes, it calls Wrote (or Poll) and checks that the committed index equals
// what SQLite's recovery would find in the file at that moment.
type harness struct {
	t        *testing.T
	f        *memFile
	c        *Capture
	sink     *recSink
	w        *walWriter
	poll     bool
	quiet    bool  // writes without calling the capture
	err      error // last error from the capture, when allowErr
	allowErr bool
}

func newHarness(t *testing.T, ps uint32, be, poll bool) *harness {
	h := &harness{t: t, f: &memFile{}, sink: &recSink{}, poll: poll}
	h.c = NewCapture(h.sink)
	h.w = newWALWriter(t, h.f, ps, be)
	h.w.afterOne = func(off int64, n int) {
		if h.quiet {
			return
		}
		h.call(off, n)
	}
	return h
}

func (h *harness) call(off int64, n int) {
	h.t.Helper()
	var err error
	if h.poll {
		err = h.c.Poll(h.f, h.f.Size())
	} else {
		err = h.c.Wrote(h.f, off, n, h.f.Size())
	}
	if err != nil {
		if !h.allowErr {
			h.t.Fatalf("capture after write at %d+%d: %v", off, n, err)
		}
		h.err = err
		return
	}
	h.checkIndex(fmt.Sprintf("after write at %d+%d", off, n))
}

func (h *harness) checkIndex(when string) {
	h.t.Helper()
	_, want := refParse(h.f.b)
	diffIndex(h.t, when, h.c.Committed(), want)
}

func (h *harness) emitted() int { return len(h.sink.txns) }

func (h *harness) wantEmitted(n int, when string) {
	h.t.Helper()
	if got := h.emitted(); got != n {
		h.t.Fatalf("%s: %d txns emitted, want %d", when, got, n)
	}
}

// eachVariant runs f for both checksum byte orders and both capture modes.
func eachVariant(t *testing.T, f func(t *testing.T, be, poll bool)) {
	for _, be := range []bool{false, true} {
		for _, poll := range []bool{false, true} {
			name := "le"
			if be {
				name = "be"
			}
			if poll {
				name += "/poll"
			} else {
				name += "/wrote"
			}
			t.Run(name, func(t *testing.T) { f(t, be, poll) })
		}
	}
}

// TestOverwriteInOpenTxn simulates SQLite's cache spill: frames of an open
// transaction are written, one page changes again and is overwritten in
// place, the commit frame is appended with a checksum computed from the stale
// chain, and the checksums are rewritten one header at a time. The commit
// must be seen only when the last header is rewritten (LiteFS PR #205), with
// the new page content.
func TestOverwriteInOpenTxn(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		w := h.w
		w.header()
		w.frame(1, 0, w.page(1))
		w.frame(2, 2, w.page(2))
		h.wantEmitted(1, "first txn")

		w.frame(3, 0, w.page(3)) // frame 2
		w.frame(4, 0, w.page(4)) // frame 3
		w.frame(5, 0, w.page(5)) // frame 4
		newPage := w.page(44)
		w.overwrite(3, newPage)
		w.frame(6, 0, w.page(6))
		w.frame(2, 6, w.page(22)) // commit frame, stale checksum
		h.wantEmitted(1, "commit frame written over a stale chain")

		w.rewriteChecksums(3, func(i int64) {
			if i < w.n-1 {
				h.wantEmitted(1, fmt.Sprintf("checksum of frame %d rewritten", i))
			}
		})
		h.wantEmitted(2, "all checksums rewritten")
		got := h.sink.txns[1]
		if got.Commit != 6 || got.Offset != FrameOffset(512, 2) || got.End != FrameOffset(512, 7) {
			t.Fatalf("txn: commit %d at %d..%d", got.Commit, got.Offset, got.End)
		}
		if !bytes.Equal(got.data[4], newPage) {
			t.Errorf("page 4 holds the content from before the overwrite")
		}
		if pgnos := pageNumbers(got.Txn); !slices.Equal(pgnos, []uint32{2, 3, 4, 5, 6}) {
			t.Errorf("pages %v", pgnos)
		}
	})
}

// TestPollAfterManyWrites polls only at a few points, with several rewrites
// of the open transaction in between.
func TestPollAfterManyWrites(t *testing.T) {
	for _, be := range []bool{false, true} {
		h := newHarness(t, 1024, be, true)
		h.quiet = true
		w := h.w
		poll := func(want int, when string) {
			t.Helper()
			if err := h.c.Poll(h.f, h.f.Size()); err != nil {
				t.Fatal(err)
			}
			h.checkIndex(when)
			h.wantEmitted(want, when)
		}
		w.header()
		w.frame(1, 0, w.page(1))
		w.frame(2, 0, w.page(2))
		poll(0, "open txn")
		w.frame(3, 3, w.page(3))
		w.frame(4, 0, w.page(4)) // frame 3, open
		w.frame(5, 0, w.page(5)) // frame 4, open
		poll(1, "one commit")
		w.overwrite(3, w.page(40))
		w.frame(6, 0, w.page(6))
		w.frame(7, 7, w.page(7)) // stale checksum
		poll(1, "stale commit frame")
		w.rewriteChecksums(3, nil)
		w.frame(1, 7, w.page(11)) // next txn, one frame
		poll(3, "rewritten and one more")
		if !bytes.Equal(h.sink.txns[1].data[4], w.page(40)) {
			t.Errorf("page 4: old content")
		}
	}
}

// TestRollbackThenNewTxn: frames of a rolled-back transaction stay in the
// file; the next transaction overwrites them from the last commit end.
func TestRollbackThenNewTxn(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		w := h.w
		w.header()
		w.frame(1, 0, w.page(1))
		w.frame(2, 2, w.page(2))
		for i := range 4 {
			w.frame(uint32(3+i), 0, w.page(10+i)) // spilled, then rolled back
		}
		h.wantEmitted(1, "rolled-back frames")
		w.rollback(2)
		w.frame(7, 0, w.page(7))
		w.frame(8, 8, w.page(8)) // shorter than the rolled-back tail
		h.wantEmitted(2, "txn over the tail")
		if got := h.sink.txns[1]; got.Offset != h.sink.txns[0].End || !slices.Equal(pageNumbers(got.Txn), []uint32{7, 8}) {
			t.Fatalf("txn 2 at %d pages %v", got.Offset, pageNumbers(got.Txn))
		}
		// A second rollback, then a longer transaction.
		w.frame(9, 0, w.page(9))
		w.rollback(4)
		for i := range 6 {
			commit := uint32(0)
			if i == 5 {
				commit = 20
			}
			w.frame(uint32(10+i), commit, w.page(20+i))
		}
		h.wantEmitted(3, "longer txn")
	})
}

// TestRestartAtOffsetZero: after a checkpoint SQLite writes a new header and
// overwrites the old generation from offset 32.
func TestRestartAtOffsetZero(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		w := h.w
		w.header()
		for i := range 3 {
			w.frame(1, 0, w.page(i))
			w.frame(2, 0, w.page(i+10))
			w.frame(3, 3, w.page(i+20))
		}
		h.wantEmitted(3, "generation 1")

		w.restart()
		if idx := h.c.Committed(); len(idx.Pages) != 0 || idx.DBSize != 0 || idx.End != HeaderSize || idx.Salt1 != w.salt1 {
			t.Fatalf("after restart: index %+v", idx)
		}
		w.frame(4, 4, w.page(30)) // overwrites one old frame only
		h.wantEmitted(4, "first txn of generation 2")
		idx := h.c.Committed()
		if !mapsEqual(idx.Pages, map[uint32]int64{4: FrameOffset(512, 0) + FrameHeaderSize}) || idx.DBSize != 4 {
			t.Fatalf("index %+v", idx)
		}
		w.frame(5, 0, w.page(31))
		w.frame(1, 5, w.page(32))
		h.wantEmitted(5, "second txn of generation 2")

		// The same header written again is not a new generation.
		hdr := slices.Clone(h.f.b[:HeaderSize])
		w.write(0, hdr)
		h.wantEmitted(5, "same header rewritten")
		if h.c.Committed().DBSize != 5 {
			t.Fatalf("same header reset the index")
		}

		// wal_checkpoint(TRUNCATE), then a new header into the empty file.
		h.f.Truncate(0)
		if poll {
			if err := h.c.Poll(h.f, 0); err != nil {
				t.Fatal(err)
			}
		} else {
			h.c.Truncated(0)
		}
		h.checkIndex("truncated to 0")
		w.restart()
		w.frame(2, 0, w.page(40))
		w.frame(1, 2, w.page(41))
		h.wantEmitted(6, "after truncate")
		if got := h.sink.txns[5]; got.Salt1 != w.salt1 || got.Offset != HeaderSize {
			t.Fatalf("txn after truncate: salt %x offset %d", got.Salt1, got.Offset)
		}
	})
}

// TestPageSizes runs a small history at every page size.
func TestPageSizes(t *testing.T) {
	for ps := uint32(MinPageSize); ps <= MaxPageSize; ps *= 2 {
		t.Run(fmt.Sprint(ps), func(t *testing.T) {
			for _, poll := range []bool{false, true} {
				h := newHarness(t, ps, ps%2048 == 0, poll)
				w := h.w
				w.header()
				w.frame(1, 0, w.page(1))
				w.frame(2, 0, w.page(2))
				w.overwrite(0, w.page(3))
				w.frame(1, 2, w.page(4))
				w.rewriteChecksums(0, nil)
				w.frame(3, 3, w.page(5))
				h.wantEmitted(2, "end")
				got := h.sink.txns[0]
				if got.PageSize != ps || !bytes.Equal(got.data[1], w.page(4)) || !bytes.Equal(got.data[2], w.page(2)) {
					t.Fatalf("txn %+v", got.Txn)
				}
			}
		})
	}
}

// TestBigEndianFixture converts a real WAL to big-endian checksums: the
// capture must find the same transactions.
func TestBigEndianFixture(t *testing.T) {
	for _, name := range goldens {
		le := fixture(t, loadExpectation(t, name).WAL)
		leTxns, _ := refParse(le)
		end := leTxns[len(leTxns)-1].End
		be := slices.Clone(le[:end])
		be[3] = 0x83
		resealHeader(be)
		reseal(be, HeaderSize)
		if h, err := ParseHeader(be); err != nil || !h.BigEndian() {
			t.Fatalf("%s: %+v, %v", name, h, err)
		}
		diffTxns(t, name+" big-endian", stripData(parseAll(t, be)), leTxns)
		got, _ := replay(t, be, replay4K, false)
		diffTxns(t, name+" big-endian replay", got, leTxns)
		// Left little-endian words do not validate under the big-endian magic.
		le2 := slices.Clone(le)
		le2[3] = 0x83
		resealHeader(le2)
		if got := parseAll(t, le2); len(got) != 0 {
			t.Fatalf("%s: %d txns with the wrong byte order", name, len(got))
		}
	}
}

func pageNumbers(t Txn) []uint32 {
	var out []uint32
	for _, p := range t.Pages {
		out = append(out, p.Pgno)
	}
	return out
}

// TestPollFinishesGenerationAfterUnseenRestart: in passthrough mode walfs may
// first poll after SQLite already restarted the WAL. The old generation's
// last transactions are still behind the new header until new frames reach
// them; Poll emits them, and reports ErrRestarted only when it cannot prove
// nothing was overwritten.
func TestPollFinishesGenerationAfterUnseenRestart(t *testing.T) {
	for _, be := range []bool{false, true} {
		setup := func(t *testing.T) *harness {
			h := newHarness(t, 512, be, true)
			h.w.header()
			for i := range 4 {
				h.w.frame(uint32(i+1), uint32(i+1), h.w.page(i))
			}
			h.wantEmitted(4, "generation 1")
			h.quiet = true
			for i := range 3 { // committed, never polled
				h.w.frame(uint32(i+1), 4, h.w.page(10+i))
			}
			return h
		}
		t.Run(fmt.Sprint("be=", be, "/proven"), func(t *testing.T) {
			h := setup(t)
			h.w.restart()
			h.w.frame(9, 9, h.w.page(20)) // overwrites frame 0 only
			if err := h.c.Poll(h.f, h.f.Size()); err != nil {
				t.Fatalf("poll: %v", err)
			}
			h.wantEmitted(8, "old tail and the new generation's first txn")
			if got := h.sink.txns[4]; got.Salt1 != h.w.salt1-1 || len(got.Pages) != 1 {
				t.Fatalf("drained txn %+v", got)
			}
			h.checkIndex("after drain")
		})
		t.Run(fmt.Sprint("be=", be, "/overtaken"), func(t *testing.T) {
			h := setup(t)
			h.w.restart()
			for i := range 8 { // reaches past the old generation's end
				h.w.frame(uint32(i+1), uint32(i+1), h.w.page(30+i))
			}
			if err := h.c.Poll(h.f, h.f.Size()); !errors.Is(err, ErrRestarted) {
				t.Fatalf("poll: %v, want ErrRestarted", err)
			}
			h.checkIndex("after overtaken restart")
			before := h.emitted()
			h.w.frame(1, 9, h.w.page(40))
			if err := h.c.Poll(h.f, h.f.Size()); err != nil {
				t.Fatalf("poll after: %v", err)
			}
			if h.emitted() != before+1 {
				t.Fatalf("next commit not emitted")
			}
		})
		t.Run(fmt.Sprint("be=", be, "/twice"), func(t *testing.T) {
			h := setup(t)
			h.w.restart()
			h.w.frame(1, 1, h.w.page(50))
			h.w.restart()
			h.w.frame(1, 1, h.w.page(51))
			if err := h.c.Poll(h.f, h.f.Size()); !errors.Is(err, ErrRestarted) {
				t.Fatalf("poll: %v, want ErrRestarted", err)
			}
		})
	}
}

// TestSealSparesSnapshot: once Seal marked where the generation's commits end
// (walfs does so when SQLite syncs the database at the end of a checkpoint),
// a new generation that already grew past that end is no reason for
// ErrRestarted. Frames after the last commit when it was sealed (a
// transaction rolled back, or one still open that then rolls back) never
// commit in it, so the new generation overwriting them is none either; Seal
// once counted them as the generation's end.
func TestSealSparesSnapshot(t *testing.T) {
	for _, tail := range []bool{false, true} {
		t.Run(fmt.Sprint("uncommitted tail ", tail), func(t *testing.T) {
			h := newHarness(t, 512, false, true)
			h.w.header()
			for i := range 3 {
				h.w.frame(uint32(i+1), uint32(i+1), h.w.page(i))
			}
			if tail {
				h.w.frame(9, 0, h.w.page(3)) // a transaction that never commits
				h.w.frame(10, 0, h.w.page(4))
			}
			h.wantEmitted(3, "generation 1")
			h.c.Seal()
			h.quiet = true
			h.w.restart()
			for i := range 6 {
				h.w.frame(uint32(i+1), uint32(i+1), h.w.page(10+i))
			}
			if err := h.c.Poll(h.f, h.f.Size()); err != nil {
				t.Fatalf("poll: %v", err)
			}
			h.wantEmitted(9, "the new generation, emitted")
			h.checkIndex("after sealed restart")
		})
	}
}
