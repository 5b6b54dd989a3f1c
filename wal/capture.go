package wal

import (
	"errors"
	"fmt"
	"io"
)

// ErrRestarted is returned by Poll when a WAL restart may have cost it part
// of the old generation: the header changed while the sink was reading a
// transaction it had just validated (in passthrough mode SQLite writes the
// file concurrently, and a restart overwrites frames from the start, so the
// pages the sink read may belong to the next generation), or the new
// generation may have overwritten frames Poll had not read yet
// (finishGeneration). What was emitted counts as emitted; the caller should
// treat the replica as suspect (take a fresh snapshot). Wrote never returns
// it: there the caller serialises writes with the capture.
var ErrRestarted = errors.New("wal: WAL restarted while the sink read a transaction")

// frame is what Capture remembers of one validated frame.
type frame struct {
	pgno, commit uint32
	ck1, ck2     uint32 // cumulative checksum through this frame (as stored in it; 0, 0 for a pending-rewrite frame)
}

// Capture follows one WAL file and emits each transaction to its Sink the
// moment its commit frame validates (doc.go: the recovery rule plus the
// pending-rewrite rule).
//
// It keeps the frames of the current generation that validated so far (16
// bytes each) with their cumulative checksums, so that a write anywhere in the
// file costs work in proportion to the frames it touches, never a rescan: a
// write before the validated end rewinds validation to the frame it hit, and
// validation resumes from the checksum stored for the frame before.
//
// A Capture is not safe for concurrent use: the caller serialises every call
// (walfs holds the file's lock).
type Capture struct {
	sink Sink

	raw   [HeaderSize]byte // header bytes as last read
	rawOK bool             // raw holds the file's header (it was read since the last reset)
	gen   bool             // raw is a valid header: a generation is in place
	hdr   Header

	frames  []frame // validated frames of this generation, in file order
	ncommit int     // frames[:ncommit] are committed
	stuck   int     // a complete frame known invalid, untouched since; -1 if none
	// tailChecked is how many frames after the last commit the last poll
	// that validated them found (tail.go); 0 after a commit.
	tailChecked int
	skipped     bool // the last poll left frames after the wal-index's last commit unread (tail.go)
	sealed      int  // ncommit when Seal was last called in this generation; -1 if not

	pages  map[uint32]int64 // committed index
	dbSize uint32

	buf     []byte    // one frame, reused
	scratch []PageRef // reused by newTxn

	// The wal-index rule (indexed.go).
	indexMin int        // fewest new frames taken from the wal-index
	noIndex  bool       // a wal-index failed a check: not used until Reset
	istats   IndexStats // what the wal-index rule took
	pgnos    []uint32   // reused by takeIndexed
	ibuf     []byte     // reused by takeIndexed
	keys     []uint64   // reused by newestMatch

	// MergePolls makes Poll emit the transactions that committed since the
	// last call as one transaction: each page once, in its latest committed
	// image, with the last one's database size. The sink then reads and
	// checksums a page that a stream of small commits rewrote once per
	// Poll instead of once per commit; the committed state after each Poll
	// is the same. Wrote always emits each transaction.
	MergePolls bool
}

// NewCapture returns a Capture that emits to sink. A nil sink is allowed: the
// capture then only tracks the committed index.
func NewCapture(sink Sink) *Capture {
	return &Capture{sink: sink, stuck: -1, sealed: -1, pages: map[uint32]int64{}, indexMin: indexMinFrames}
}

// Load positions the capture on an existing WAL without emitting anything
// (first sight / mount start). It returns the index of the committed state of
// the current WAL generation. A WAL without a valid header is not an error:
// SQLite ignores it, and the index is empty.
func (c *Capture) Load(r io.ReaderAt, size int64) (*Index, error) {
	c.Reset()
	if err := c.readHeader(r, size); err != nil {
		return nil, err
	}
	if c.gen {
		if err := c.advance(r, size, false, false, -1, -1); err != nil {
			return nil, err
		}
	}
	return c.Committed(), nil
}

// Adopt positions c where o is, o being a capture Load positioned on the
// file c follows (a reload read once). c keeps its sink, settings and
// counts; o must not be used afterwards.
func (c *Capture) Adopt(o *Capture) {
	c.raw, c.rawOK, c.gen, c.hdr = o.raw, o.rawOK, o.gen, o.hdr
	c.frames, c.ncommit, c.stuck, c.sealed = o.frames, o.ncommit, o.stuck, o.sealed
	c.pages, c.dbSize, c.tailChecked, c.noIndex = o.pages, o.dbSize, o.tailChecked, o.noIndex
}

// Wrote is called after n bytes were written at off to the backing WAL file,
// whose size is now size. It emits every transaction that became committed.
// On a sink error it returns an error wrapping it and leaves its state as if
// the commit frame had not validated yet, so a later call retries it.
//
// A capture that never read the header (new, or after Reset or a truncation
// below the header) reads it on the first call that finds one, and then
// emits every transaction already committed in that generation.
func (c *Capture) Wrote(r io.ReaderAt, off int64, n int, size int64) error {
	if c.gen && size < c.frameOffset(len(c.frames)) {
		c.Truncated(size) // shrunk behind our back
	}
	if (n > 0 && off < HeaderSize) || !c.rawOK {
		if err := c.readHeader(r, size); err != nil {
			return err
		}
	}
	if !c.gen {
		return nil
	}
	if end := off + int64(n); n > 0 && end > HeaderSize {
		if err := c.touched(r, c.frameIndex(max(off, HeaderSize)), c.frameIndex(end-1)); err != nil {
			return err
		}
	}
	return c.advance(r, size, true, false, -1, -1)
}

// Poll validates as far as the file allows without knowing which bytes
// changed (passthrough mode: the kernel wrote the file and walfs was woken by
// inotify). It re-reads the header and revalidates the open transaction from
// the last commit boundary, so frames rewritten since the last call are seen;
// its cost is the size of the open transaction plus the new bytes.
//
// Committed frames are not re-read: SQLite only overwrites them after writing
// a new header, which Poll does detect. See ErrRestarted for the one race it
// reports.
func (c *Capture) Poll(r io.ReaderAt, size int64) error {
	return c.poll(r, nil, size, true)
}

// poll is Poll, and PollIndexed with a wal-index; full validates an open
// transaction's frames whatever the wal-index says (tail.go).
func (c *Capture) poll(r, shm io.ReaderAt, size int64, full bool) error {
	if c.gen && size < c.frameOffset(len(c.frames)) {
		c.Truncated(size)
	}
	b, ok, err := readHeaderBytes(r, size)
	if err != nil {
		return err
	}
	missed := false
	if c.gen && ok && b != c.raw {
		if missed, err = c.finishGeneration(r, size, b); err != nil {
			return err
		}
	}
	c.useHeader(b, ok)
	if !c.gen {
		return nil
	}
	c.frames = c.frames[:c.ncommit]
	c.stuck = -1
	if missed {
		// Nothing of this generation may chain onto a replica that lacks
		// what was missed: index it without emitting, and let the caller
		// take a snapshot.
		if err := c.advance(r, size, false, false, -1, -1); err != nil {
			return err
		}
		return ErrRestarted
	}
	last, upto := -1, -1
	h, ours := c.indexOf(shm)
	if ours && !full {
		if upto, err = c.openTail(r, h, size); err != nil {
			return err
		}
	}
	c.skipped = upto >= 0
	if ours && h.maxFrame > 0 && c.MergePolls && c.sink != nil {
		if last, err = c.takeIndexed(r, shm, h, size); err != nil {
			return err
		}
	}
	err = c.advance(r, size, true, true, last, upto)
	if err != nil && last >= 0 {
		// Frames taken from the wal-index carry no checksum to chain
		// from: the next call validates from the last commit again.
		c.frames = c.frames[:c.ncommit]
	}
	return err
}

// finishGeneration handles a WAL restart that happened since the last Poll
// (passthrough mode: SQLite wrote the new header b without walfs seeing it).
// The frames the old generation committed after that poll are still in the
// file behind the new header, until the new generation's frames, written in
// order from the start, reach them. So it validates on with the old header
// and emits what commits, then checks that the frame where validation
// stopped was the old generation's end rather than one the new generation
// already overwrote. Either Seal said so (nothing committed since), or the
// file does: the new generation writes each frame's header (with its new
// salts) first, so a frame header without the new salts, read after the stop,
// proves the stop was genuine. missed reports that this cannot be proven (or
// that more than one restart happened): something may be lost, and the
// caller must take a snapshot.
func (c *Capture) finishGeneration(r io.ReaderAt, size int64, b [HeaderSize]byte) (missed bool, err error) {
	next, err := ParseHeader(b[:])
	if err != nil {
		return false, nil // SQLite ignores this file too
	}
	c.frames = c.frames[:c.ncommit]
	c.stuck = -1
	first := len(c.frames)
	if err := c.advance(r, size, true, false, -1, -1); err != nil {
		return false, err
	}
	end := len(c.frames)
	if c.ncommit == c.sealed {
		return false, nil
	}
	// The sink read pages while the new generation was being written: if
	// any frame it emitted has changed since, what it read is suspect.
	for i := first; i < c.ncommit; i++ {
		f, st, err := c.check(r, i)
		if err != nil {
			return false, err
		}
		if st != frameValid || f != c.frames[i] {
			return true, nil
		}
	}
	if next.Salt1 != c.hdr.Salt1+1 {
		return true, nil // restarted more than once since the last poll
	}
	h, ok, err := c.readFrameHeader(r, end)
	if err != nil || !ok {
		return false, err // !ok: the new generation has not reached it
	}
	return h.Salt1 == next.Salt1 && h.Salt2 == next.Salt2, nil
}

// Seal records that the generation's last commit is the last one validated:
// the caller knows the writer cannot commit more to it before the WAL
// restarts. walfs calls it when SQLite syncs the database at the end of a
// checkpoint (so a restart may follow) right after a Poll; a commit after
// that needs another checkpoint, and so another Seal, before a restart.
// Frames after the last commit (a transaction still open, or one rolled
// back) never commit in this generation then, and the new one may overwrite
// them. It spares finishGeneration a snapshot when the new generation has
// already grown past the old one's last commit. Valid until the next commit
// validates.
func (c *Capture) Seal() {
	if c.gen {
		c.sealed = c.ncommit
	}
}

// Truncated tells the capture the backing file was truncated to size
// (wal_checkpoint(TRUNCATE), journal_size_limit). Below the header the
// generation ends; otherwise frames past the new end are forgotten, and if
// that cuts into committed frames the committed index goes back to the last
// commit that still fits (transactions already emitted stay emitted).
func (c *Capture) Truncated(size int64) {
	if size < HeaderSize {
		c.Reset()
		return
	}
	if !c.gen {
		return
	}
	nf := int((size - HeaderSize) / c.frameSize())
	if c.stuck >= nf {
		c.stuck = -1
	}
	if nf >= len(c.frames) {
		return
	}
	if nf >= c.ncommit {
		c.frames = c.frames[:nf]
		return
	}
	c.rebuildIndex(c.commitBoundary(nf))
}

// Reset forgets the file: the WAL was deleted or replaced. The next call that
// finds a header starts a new generation.
func (c *Capture) Reset() {
	c.raw = [HeaderSize]byte{}
	c.rawOK = false
	c.gen = false
	c.hdr = Header{}
	c.resetGeneration()
	// The WAL is gone (SQLite's last connection closed): a quiet database
	// keeps no frame buffers and no index.
	c.frames, c.buf, c.scratch = nil, nil, nil
	c.pgnos, c.ibuf, c.keys = nil, nil, nil
	c.noIndex = false
	c.pages = map[uint32]int64{}
}

func (c *Capture) resetGeneration() {
	// A generation that held a big transaction leaves its frame list and
	// index behind only if they are small: a WAL of a gigabyte would
	// otherwise cost its 16 bytes per frame until the capture goes away.
	if cap(c.frames) > keepFrames {
		c.frames = nil
	}
	c.frames = c.frames[:0]
	if len(c.pages) > keepFrames {
		c.pages = map[uint32]int64{} // clear keeps a map's buckets
	}
	clear(c.pages)
	c.ncommit = 0
	c.stuck = -1
	c.sealed = -1
	c.dbSize = 0
	c.tailChecked = 0
}

// keepFrames is how many frames' worth of bookkeeping a capture keeps for
// reuse across generations (and newTxn across transactions).
const keepFrames = 4096

// readHeader reads the WAL header. A header that differs from the one last
// read starts a new generation when it is valid and ends the current one when
// it is not (SQLite then ignores the whole file).
func (c *Capture) readHeader(r io.ReaderAt, size int64) error {
	b, ok, err := readHeaderBytes(r, size)
	if err != nil {
		return err
	}
	c.useHeader(b, ok)
	return nil
}

// readHeaderBytes reads the header's bytes; ok is false when the file is too
// short to hold one.
func readHeaderBytes(r io.ReaderAt, size int64) (b [HeaderSize]byte, ok bool, err error) {
	if size < HeaderSize {
		return b, false, nil
	}
	if n, err := r.ReadAt(b[:], 0); n < HeaderSize {
		if err == io.EOF || err == nil {
			return b, false, nil
		}
		return b, false, fmt.Errorf("read wal header: %w", err)
	}
	return b, true, nil
}

// useHeader applies header bytes read by readHeaderBytes (see readHeader).
func (c *Capture) useHeader(b [HeaderSize]byte, ok bool) {
	if !ok {
		if c.rawOK {
			c.Reset()
		}
		return
	}
	if c.rawOK && b == c.raw {
		return
	}
	c.raw, c.rawOK = b, true
	c.resetGeneration()
	h, err := ParseHeader(b[:])
	if err != nil {
		c.gen, c.hdr = false, Header{}
		return
	}
	c.gen, c.hdr = true, h
	if fs := int(c.frameSize()); cap(c.buf) < fs {
		c.buf = make([]byte, fs)
	} else {
		c.buf = c.buf[:fs]
	}
}

// touched handles a write that covered frames first..last (inclusive).
func (c *Capture) touched(r io.ReaderAt, first, last int) error {
	if c.stuck >= 0 && first <= c.stuck {
		c.stuck = -1
	}
	if first >= len(c.frames) {
		return nil
	}
	if first >= c.ncommit {
		// A frame of the open transaction was rewritten (cache spill, or a
		// rolled-back tail being overwritten): validate again from there.
		c.frames = c.frames[:first]
		return nil
	}
	// Committed frames rewritten without a new header: SQLite never does
	// this. Keep them if they still validate to the same checksums; otherwise
	// the committed state goes back to the last commit before the change.
	for i := first; i <= min(last, c.ncommit-1); i++ {
		f, st, err := c.check(r, i)
		if err != nil {
			return err
		}
		if st != frameValid || f != c.frames[i] {
			c.rebuildIndex(c.commitBoundary(i))
			return nil
		}
	}
	if last >= c.ncommit {
		c.frames = c.frames[:c.ncommit]
	}
	return nil
}

// advance validates frames after the last validated one as far as the file
// allows (or up to frame upto, when not negative), emitting each transaction
// whose commit frame validates when emit is set. last is the last commit
// frame validated and not yet emitted (merge only; -1 if none).
func (c *Capture) advance(r io.ReaderAt, size int64, emit, poll bool, last, upto int) error {
	fs := c.frameSize()
	merge := emit && poll && c.MergePolls && c.sink != nil
	for {
		i := len(c.frames)
		if i == c.stuck || c.frameOffset(i)+fs > size || upto >= 0 && i >= upto {
			return c.emitMerged(r, last)
		}
		f, st, err := c.check(r, i)
		if err != nil {
			return err // merged commits not emitted: the next Poll validates them again
		}
		switch st {
		case frameShort:
			return c.emitMerged(r, last)
		case frameInvalid:
			c.stuck = i
			return c.emitMerged(r, last)
		}
		c.frames = append(c.frames, f)
		if f.commit == 0 {
			continue
		}
		if merge {
			last = i
			continue
		}
		if emit && c.sink != nil {
			if err := c.emit(r, i, poll); err != nil {
				return err
			}
			continue
		}
		c.applyCommitted(c.ncommit, i)
	}
}

// emitMerged emits the transactions committed in frames [ncommit, last] as
// one (MergePolls); last < 0: none.
func (c *Capture) emitMerged(r io.ReaderAt, last int) error {
	if last < 0 {
		return nil
	}
	return c.emit(r, last, true)
}

// emit hands the sink frames [ncommit, last], ending in a commit frame, as
// one transaction and records them as committed. After a Poll's emit the
// header must not have changed (ErrRestarted).
func (c *Capture) emit(r io.ReaderAt, last int, poll bool) error {
	first := c.ncommit
	txn := c.newTxn(first, last)
	if err := c.sink.Commit(txn, r); err != nil {
		c.frames = c.frames[:last]
		return fmt.Errorf("commit wal transaction at offsets %d..%d: %w", txn.Offset, txn.End, err)
	}
	c.applyCommitted(first, last)
	if poll {
		return c.checkHeaderUnchanged(r)
	}
	return nil
}

// Peeker is an io.ReaderAt that can lend bytes it holds in memory already
// (a read-ahead buffer) instead of copying them. Peek returns the n bytes
// at off, valid until the next call on the Peeker, or nil when it does not
// hold them (ReadAt then reads them). Capture only reads what it borrows.
type Peeker interface {
	io.ReaderAt
	Peek(off int64, n int) []byte
}

// Results of check.
const (
	frameValid   = iota
	frameInvalid // in the file and not valid: stays so until its bytes change
	frameShort   // not entirely in the file yet
)

// check reads frame i and validates it against the header and the checksum
// stored in frame i-1 (the header's for frame 0): the recovery rule, plus the
// pending-rewrite rule (doc.go).
func (c *Capture) check(r io.ReaderAt, i int) (frame, int, error) {
	off := c.frameOffset(i)
	var buf []byte
	if p, ok := r.(Peeker); ok {
		buf = p.Peek(off, len(c.buf))
	}
	if buf == nil {
		buf = c.buf
		n, err := r.ReadAt(c.buf, off)
		if n < len(c.buf) {
			if err == io.EOF || err == nil {
				return frame{}, frameShort, nil
			}
			return frame{}, frameShort, fmt.Errorf("read wal frame %d at offset %d: %w", i, off, err)
		}
	}
	fh := ParseFrameHeader(buf)
	if fh.pendingRewrite() {
		// Counts without a checksum of its own; the frame after it is
		// checked from (0, 0), the checksum stored in it. See doc.go.
		return frame{pgno: fh.Pgno}, frameValid, nil
	}
	if fh.Salt1 != c.hdr.Salt1 || fh.Salt2 != c.hdr.Salt2 || fh.Pgno == 0 {
		return frame{}, frameInvalid, nil
	}
	s1, s2 := c.hdr.Checksum1, c.hdr.Checksum2
	if i > 0 {
		s1, s2 = c.frames[i-1].ck1, c.frames[i-1].ck2
	}
	be := c.hdr.BigEndian()
	s1, s2 = Checksum(be, s1, s2, buf[:8])
	s1, s2 = Checksum(be, s1, s2, buf[FrameHeaderSize:])
	if s1 != fh.Checksum1 || s2 != fh.Checksum2 {
		return frame{}, frameInvalid, nil
	}
	return frame{pgno: fh.Pgno, commit: fh.Commit, ck1: s1, ck2: s2}, frameValid, nil
}

func (c *Capture) checkHeaderUnchanged(r io.ReaderAt) error {
	var b [HeaderSize]byte
	if n, err := r.ReadAt(b[:], 0); n < HeaderSize && err != io.EOF && err != nil {
		return fmt.Errorf("read wal header: %w", err)
	}
	if b != c.raw {
		return ErrRestarted
	}
	return nil
}

// commitBoundary returns the number of frames up to and including the last
// commit frame among frames[:n].
func (c *Capture) commitBoundary(n int) int {
	for n > 0 && c.frames[n-1].commit == 0 {
		n--
	}
	return n
}

func (c *Capture) frameSize() int64 { return FrameHeaderSize + int64(c.hdr.PageSize) }

func (c *Capture) frameOffset(i int) int64 { return FrameOffset(c.hdr.PageSize, int64(i)) }

func (c *Capture) dataOffset(i int) int64 { return c.frameOffset(i) + FrameHeaderSize }

// frameIndex returns the index of the frame holding file offset off (>= HeaderSize).
func (c *Capture) frameIndex(off int64) int {
	return int((off - HeaderSize) / c.frameSize())
}
