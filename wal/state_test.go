package wal

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

var errSink = errors.New("sink is full")

// TestSinkError: a failing sink gets its error back through errors.Is, the
// commit stays unemitted and is retried by the next call.
func TestSinkError(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		h.allowErr = true
		fail := 1
		h.sink.check = func(txn *Txn, r io.ReaderAt) error {
			if txn.Commit == 3 && fail > 0 {
				fail--
				return errSink
			}
			return nil
		}
		w := h.w
		w.header()
		w.frame(1, 2, w.page(1))
		w.frame(2, 0, w.page(2))
		w.frame(3, 3, w.page(3))
		if !errors.Is(h.err, errSink) {
			t.Fatalf("error %v, want one wrapping errSink", h.err)
		}
		h.wantEmitted(1, "sink failed")
		if idx := h.c.Committed(); idx.DBSize != 2 || idx.End != FrameOffset(512, 1) {
			t.Fatalf("index after sink error: %+v", idx)
		}
		// Retry without a new write.
		h.err = nil
		h.call(0, 0)
		if h.err != nil {
			t.Fatal(h.err)
		}
		h.wantEmitted(2, "retry")

		// A failed commit that the caller then invalidates (walfs zeroes the
		// frame's salt so recovery won't replay it) is never emitted.
		fail = 1
		h.sink.check = func(txn *Txn, r io.ReaderAt) error {
			if fail > 0 {
				fail--
				return errSink
			}
			return nil
		}
		w.frame(4, 4, w.page(4))
		if !errors.Is(h.err, errSink) {
			t.Fatalf("error %v", h.err)
		}
		h.err = nil
		w.write(FrameOffset(512, 3)+8, make([]byte, 8))
		h.wantEmitted(2, "invalidated commit frame")
		w.rollback(3)
		w.frame(5, 5, w.page(5))
		h.wantEmitted(3, "next txn")
	})
}

// TestSinkErrorSecondOfTwo: one write completes two transactions and the
// sink fails on the second; the first stays emitted.
func TestSinkErrorSecondOfTwo(t *testing.T) {
	f := &memFile{}
	w := newWALWriter(t, f, 512, false)
	w.header()
	w.frame(1, 1, w.page(1))
	w.frame(2, 2, w.page(2))
	sink := &recSink{check: func(txn *Txn, _ io.ReaderAt) error {
		if txn.Commit == 2 {
			return errSink
		}
		return nil
	}}
	c := NewCapture(sink)
	err := c.Wrote(f, 0, int(f.Size()), f.Size())
	if !errors.Is(err, errSink) {
		t.Fatalf("error %v", err)
	}
	if len(sink.txns) != 1 || c.Committed().DBSize != 1 {
		t.Fatalf("%d txns emitted, index %+v", len(sink.txns), c.Committed())
	}
}

// TestTruncated covers journal_size_limit (cuts only uncommitted frames) and
// a truncation into committed frames (never done by SQLite mid-generation).
func TestTruncated(t *testing.T) {
	eachVariant(t, func(t *testing.T, be, poll bool) {
		h := newHarness(t, 512, be, poll)
		w := h.w
		truncate := func(size int64) {
			t.Helper()
			h.f.Truncate(size)
			if poll {
				if err := h.c.Poll(h.f, size); err != nil {
					t.Fatal(err)
				}
			} else {
				h.c.Truncated(size)
			}
			h.checkIndex(fmt.Sprintf("truncated to %d", size))
		}
		w.header()
		w.frame(1, 1, w.page(1))
		w.frame(2, 2, w.page(2))
		w.frame(3, 0, w.page(3))
		w.frame(4, 0, w.page(4))
		truncate(FrameOffset(512, 3) + 100) // cuts an open txn's frame in half
		w.rollback(3)
		w.frame(4, 4, w.page(5))
		h.wantEmitted(3, "txn completed after truncation")

		truncate(FrameOffset(512, 1) + 10) // into committed frames
		if idx := h.c.Committed(); idx.DBSize != 1 || idx.End != FrameOffset(512, 1) {
			t.Fatalf("index %+v", idx)
		}
		w.rollback(1)
		w.frame(9, 9, w.page(9))
		h.wantEmitted(4, "after truncation into committed frames")

		truncate(HeaderSize - 1)
		if idx := h.c.Committed(); idx.PageSize != 0 || len(idx.Pages) != 0 {
			t.Fatalf("index %+v", idx)
		}
	})
}

// TestCommittedFrameRewritten: a write into committed frames without a new
// header (not something SQLite does) is checked, not trusted.
func TestCommittedFrameRewritten(t *testing.T) {
	for _, be := range []bool{false, true} {
		h := newHarness(t, 512, be, false)
		w := h.w
		w.header()
		for i := range 4 {
			w.frame(uint32(i+1), uint32(i+1), w.page(i))
		}
		h.wantEmitted(4, "setup")
		orig := slices.Clone(h.f.b[FrameOffset(512, 2)+FrameHeaderSize:][:512])
		w.overwrite(2, w.page(99)) // breaks the chain at frame 2 (checked by the harness)
		if got := h.c.Committed().DBSize; got != 2 {
			t.Fatalf("db size %d after a committed frame broke", got)
		}
		w.overwrite(1, w.page(1)) // same bytes: nothing changes
		w.overwrite(2, orig)      // chain whole again: frames 2 and 3 are replayed again
		h.wantEmitted(6, "chain repaired")
	}
}

// TestTxnPages: duplicates resolved to the last frame, ascending, pages past
// the commit size left out.
func TestTxnPages(t *testing.T) {
	f := &memFile{}
	w := newWALWriter(t, f, 512, false)
	w.header()
	for i, pgno := range []uint32{5, 3, 5, 1, 9, 3} {
		commit := uint32(0)
		if i == 5 {
			commit = 6
		}
		w.frame(pgno, commit, w.page(i))
	}
	sink := &recSink{}
	c := NewCapture(sink)
	if err := c.Poll(f, f.Size()); err != nil {
		t.Fatal(err)
	}
	data := func(i int64) int64 { return FrameOffset(512, i) + FrameHeaderSize }
	want := []PageRef{{1, data(3)}, {3, data(5)}, {5, data(2)}}
	if len(sink.txns) != 1 || !slices.Equal(sink.txns[0].Pages, want) {
		t.Fatalf("pages %v, want %v", sink.txns[0].Pages, want)
	}
	if idx := c.Committed(); !mapsEqual(idx.Pages, map[uint32]int64{1: data(3), 3: data(5), 5: data(2)}) {
		t.Fatalf("index %v", idx.Pages)
	}
	// The db grows past page 9 again without writing it: SQLite would read
	// page 9 from its earlier frame, so the index does too.
	w.frame(10, 10, w.page(10))
	if err := c.Poll(f, f.Size()); err != nil {
		t.Fatal(err)
	}
	if off, ok := c.Committed().Pages[9]; !ok || off != data(4) {
		t.Fatalf("page 9 at %d (%v)", off, ok)
	}
}

// TestLoad positions on an existing WAL without emitting, then captures
// only what follows.
func TestLoad(t *testing.T) {
	f := &memFile{}
	w := newWALWriter(t, f, 4096, false)
	w.header()
	w.frame(1, 0, w.page(1))
	w.frame(2, 2, w.page(2))
	w.frame(3, 0, w.page(3)) // open txn
	sink := &recSink{}
	c := NewCapture(sink)
	idx, err := c.Load(f, f.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.txns) != 0 || idx.DBSize != 2 || len(idx.Pages) != 2 || idx.End != FrameOffset(4096, 2) {
		t.Fatalf("Load: %d emitted, index %+v", len(sink.txns), idx)
	}
	w.afterOne = func(off int64, n int) {
		if err := c.Wrote(f, off, n, f.Size()); err != nil {
			t.Fatal(err)
		}
	}
	w.frame(4, 4, w.page(4))
	if len(sink.txns) != 1 || !slices.Equal(pageNumbers(sink.txns[0].Txn), []uint32{3, 4}) {
		t.Fatalf("after Load: %v", sink.txns)
	}

	// A WAL SQLite would ignore is not an error.
	idx, err = NewCapture(nil).Load(&memFile{make([]byte, 100)}, 100)
	if err != nil || idx.PageSize != 0 || idx.End != HeaderSize || len(idx.Pages) != 0 {
		t.Fatalf("zeroed WAL: %+v, %v", idx, err)
	}
}

// TestWroteWithoutLoad: a capture that never saw the header reads it on the
// first write and emits what was already committed (never miss one).
func TestWroteWithoutLoad(t *testing.T) {
	f := &memFile{}
	w := newWALWriter(t, f, 512, false)
	w.header()
	w.frame(1, 1, w.page(1))
	sink := &recSink{}
	c := NewCapture(sink)
	w.afterOne = func(off int64, n int) {
		if err := c.Wrote(f, off, n, f.Size()); err != nil {
			t.Fatal(err)
		}
	}
	w.frame(2, 2, w.page(2))
	if len(sink.txns) != 2 {
		t.Fatalf("%d txns", len(sink.txns))
	}
}

// TestPollRestartRace: in passthrough mode SQLite may restart the WAL while
// the sink is reading; Poll reports it.
func TestPollRestartRace(t *testing.T) {
	f := &memFile{}
	w := newWALWriter(t, f, 512, false)
	w.header()
	w.frame(1, 1, w.page(1))
	sink := &recSink{check: func(*Txn, io.ReaderAt) error {
		w.restart() // concurrent writer
		return nil
	}}
	err := NewCapture(sink).Poll(f, f.Size())
	if !errors.Is(err, ErrRestarted) {
		t.Fatalf("error %v, want ErrRestarted", err)
	}
}
