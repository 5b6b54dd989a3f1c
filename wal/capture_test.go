package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

// TestWroteAllocs: following frames that do not commit allocates nothing
// beyond the amortised growth of the frame list.
func TestWroteAllocs(t *testing.T) {
	const frames = 2000
	f := &memFile{}
	w := newWALWriter(t, f, 4096, false)
	w.header()
	for i := range frames {
		w.frame(uint32(i%50+1), 0, w.page(i%7))
	}
	c := NewCapture(nil)
	if err := c.Wrote(f, 0, HeaderSize, HeaderSize); err != nil {
		t.Fatal(err)
	}
	i := int64(0)
	avg := testing.AllocsPerRun(frames-1, func() {
		off := FrameOffset(4096, i)
		if err := c.Wrote(f, off, FrameHeaderSize, off+FrameHeaderSize); err != nil {
			t.Fatal(err)
		}
		if err := c.Wrote(f, off+FrameHeaderSize, 4096, off+FrameHeaderSize+4096); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if len(c.frames) != frames {
		t.Fatalf("validated %d frames", len(c.frames))
	}
	if avg > 0.05 {
		t.Errorf("%.3f allocations per frame", avg)
	}
}

// BenchmarkWrote measures the capture cost per frame as SQLite writes them
// (two writes per frame, a commit every 8 frames).
func BenchmarkWrote(b *testing.B) {
	for _, ps := range []uint32{4096, 65536} {
		b.Run(fmt.Sprint(ps), func(b *testing.B) {
			const n = 256
			f := &memFile{}
			w := newWALWriter(b, f, ps, false)
			w.header()
			for i := range n {
				commit := uint32(0)
				if i%8 == 7 {
					commit = 100
				}
				w.frame(uint32(i%100+1), commit, w.page(i))
			}
			b.SetBytes(int64(n) * (FrameHeaderSize + int64(ps)))
			for b.Loop() {
				c := NewCapture(nil)
				if err := c.Wrote(f, 0, HeaderSize, HeaderSize); err != nil {
					b.Fatal(err)
				}
				for i := int64(0); i < n; i++ {
					off := FrameOffset(ps, i)
					c.Wrote(f, off, FrameHeaderSize, off+FrameHeaderSize)
					c.Wrote(f, off+FrameHeaderSize, int(ps), off+FrameHeaderSize+int64(ps))
				}
			}
		})
	}
}
