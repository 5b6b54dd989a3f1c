package wal

import (
	"fmt"
	"io"
	"slices"
)

// The wal-index rule. A Poll handed the WAL's wal-index (PollIndexed) takes
// the frames its header names as committed on SQLite's word instead of
// reading and checksumming each of them: that header is what every SQLite
// connection on the WAL reads to know what is committed, and the writer
// updates it only after the frames it describes are in the WAL. A stream of
// 1-row commits writes the same few pages over and over; the capture then
// reads each page's newest frame once instead of every frame.
//
// Nothing is taken on the index's word unless all of this holds (otherwise
// the frames are validated as before, from the file alone):
//   - the header is one SQLite itself would use: both copies equal,
//     initialised, its checksum valid (readIndexHeader);
//   - it describes this WAL generation: the same salts, page size and
//     checksum byte order as the WAL header;
//   - its last committed frame is in the file and is that commit: the
//     database size the header gives, and the WAL's salts with the very
//     checksum the header records, which chains through every frame before
//     it. Or, salts and checksum zero: a commit frame SQLite wrote while it
//     owed a checksum rewrite it then never did (doc.go). Its own connection
//     and every other one reading the wal-index treat that transaction as
//     committed, and so does this rule, which SQLite's recovery and the
//     checksum path cannot (they stop at it until the WAL restarts);
//   - every frame it names has a page number, the last one the page the last
//     frame holds, and the newest frame of each page holds the page the index
//     gives for it, with this generation's salts (or none: a frame SQLite
//     wrote owing a checksum rewrite, doc.go).
//
// It is used only where it saves reading: when at most half the frames are
// some page's newest. A big transaction writes most of its pages once, and
// validating its frames in file order reads no more and streams.
//
// Frames after the header's last commit are validated from the file, chained
// from the checksum the header records: the wal-index only ever moves the
// starting point forward. A restart while the sink reads is caught as for any
// poll (the WAL header is compared after the sink returns: SQLite writes a new
// WAL header before it overwrites a frame or the page numbers of the
// wal-index).
//
// The wal-index is shared memory: walfs reads it through the backing file, so
// it sees what SQLite wrote only where the kernel maps the -shm file's own
// pages (FUSE passthrough). The caller hands one only then. A stale one
// still describes frames that were committed; an incoherent one fails the
// checks above, and the capture stops using the index until the WAL goes
// away (IndexStats).

// IndexStats counts what PollIndexed took on the wal-index's word.
type IndexStats struct {
	Polls   uint64 // polls that took frames from the wal-index
	Frames  uint64 // frames taken without being read
	Refused uint64 // wal-indexes that described this generation but failed a check (then not used until Reset)
}

// indexMinFrames is the fewest new frames worth the wal-index's extra reads;
// below it the frames are read and checksummed.
const indexMinFrames = 8

// PollIndexed is Poll with the WAL's wal-index (shm, the -shm file) at hand:
// with MergePolls and a sink, the committed frames the wal-index names are
// taken without reading each (see the wal-index rule above). shm may be nil:
// that is Poll.
func (c *Capture) PollIndexed(r, shm io.ReaderAt, size int64) error {
	return c.poll(r, shm, size, false)
}

// CatchUp is PollIndexed that also validates the frames of an open
// transaction whatever the wal-index says (tail.go): for the poll before a
// checkpoint may let SQLite restart the WAL.
func (c *Capture) CatchUp(r, shm io.ReaderAt, size int64) error {
	return c.poll(r, shm, size, true)
}

// IndexStats returns the counts since the Capture was made.
func (c *Capture) IndexStats() IndexStats { return c.istats }

// takeIndexed appends to the validated frames the frames [ncommit, mxFrame)
// of the wal-index header, page numbers from the wal-index, and returns the
// index of the last one (a commit frame, checksum as the header records it).
// It returns -1 and changes nothing when the wal-index may not be used. The
// frames before the last carry no checksum (zero): nothing chains from them,
// since they are committed once emitted and Poll validates from the last
// commit on.
func (c *Capture) takeIndexed(r, shm io.ReaderAt, h indexHeader, size int64) (int, error) {
	if len(c.frames) != c.ncommit {
		return -1, nil
	}
	from, to := c.ncommit, int(h.maxFrame)
	if to-from < c.indexMin || c.frameOffset(to) > size {
		return -1, nil
	}
	fh, ok, err := c.readFrameHeader(r, to-1)
	if err != nil || !ok {
		return -1, err
	}
	chained := fh.Salt1 == c.hdr.Salt1 && fh.Salt2 == c.hdr.Salt2 && fh.Checksum1 == h.ck1 && fh.Checksum2 == h.ck2
	if fh.Pgno == 0 || fh.Commit == 0 || fh.Commit != h.dbSize || !chained && !fh.zeroed() {
		return -1, c.refuse(r)
	}
	n := to - from
	if cap(c.pgnos) < n {
		c.pgnos = make([]uint32, n)
	}
	pg := c.pgnos[:n]
	ok, c.ibuf = readIndexPgnos(shm, from, to, pg, c.ibuf)
	if !ok || pg[n-1] != fh.Pgno || slices.Contains(pg, 0) {
		return -1, c.refuse(r)
	}
	newest := c.newest(from, pg)
	if 2*len(newest) > n {
		// Most frames are some page's newest (a big transaction, VACUUM):
		// validating them all in file order reads no more and streams.
		return -1, nil
	}
	if ok, err := c.newestMatch(r, newest); err != nil || !ok {
		if err == nil {
			err = c.refuse(r)
		}
		return -1, err
	}
	for _, p := range pg[:n-1] {
		c.frames = append(c.frames, frame{pgno: p})
	}
	c.frames = append(c.frames, frame{pgno: fh.Pgno, commit: fh.Commit, ck1: h.ck1, ck2: h.ck2})
	c.istats.Polls++
	c.istats.Frames += uint64(n)
	if cap(c.pgnos) > keepFrames {
		c.pgnos = nil
	}
	if cap(c.ibuf) > 4*keepFrames {
		c.ibuf = nil
	}
	return len(c.frames) - 1, nil
}

// indexOf reads the header of the wal-index shm (nil: none) and reports
// whether it describes this WAL generation: one SQLite would use
// (readIndexHeader), with this generation's salts, page size and checksum
// byte order, and not refused. A header with no salts and no frame also
// counts: SQLite's before the first commit in a new WAL file, which names
// no commit (takeIndexed has nothing to take; tail.go stops at the
// capture's last commit).
func (c *Capture) indexOf(shm io.ReaderAt) (indexHeader, bool) {
	if shm == nil || c.noIndex || !c.gen {
		return indexHeader{}, false
	}
	h, ok := readIndexHeader(shm)
	if !ok {
		return indexHeader{}, false
	}
	if h.maxFrame == 0 && h.salt == [8]byte{} {
		return h, true
	}
	return h, h.salt == [8]byte(c.raw[16:24]) && h.pageSize == c.hdr.PageSize && h.bigEndian == c.hdr.BigEndian()
}

// refuse stops the capture using the wal-index until the WAL goes away,
// unless the WAL header changed since the poll read it: a restart under way
// explains any mismatch (the poll then reports it or finds the new
// generation next time).
func (c *Capture) refuse(r io.ReaderAt) error {
	if err := c.checkHeaderUnchanged(r); err != nil {
		if err == ErrRestarted {
			return nil
		}
		return err
	}
	c.noIndex = true
	c.istats.Refused++
	return nil
}

// newest returns, as keys pgno<<32 | frame, the newest frame of each page
// among frames from.. (page numbers pg), in page order. The slice is
// reused by the next call.
func (c *Capture) newest(from int, pg []uint32) []uint64 {
	keys := c.keys[:0]
	for k, p := range pg {
		keys = append(keys, uint64(p)<<32|uint64(from+k))
	}
	slices.Sort(keys)
	n := 0
	for k, key := range keys {
		if k+1 < len(keys) && keys[k+1]>>32 == key>>32 {
			continue // not the page's newest frame
		}
		keys[n] = key
		n++
	}
	c.keys = keys[:0]
	if cap(keys) > keepFrames {
		c.keys = nil
	}
	return keys[:n]
}

// newestMatch reads the header of each frame newest names and reports
// whether each holds its page and this generation's salts, or zero salts
// and checksums (doc.go: SQLite leaves them in frames, commit frames
// included, that a savepoint rollback made it forget to rewrite; its
// wal-index still names them).
func (c *Capture) newestMatch(r io.ReaderAt, newest []uint64) (bool, error) {
	for _, key := range newest {
		i := int(uint32(key))
		fh, ok, err := c.readFrameHeader(r, i)
		if err != nil || !ok {
			return false, err
		}
		if fh.Pgno != uint32(key>>32) || !fh.zeroed() && (fh.Salt1 != c.hdr.Salt1 || fh.Salt2 != c.hdr.Salt2) {
			return false, nil
		}
	}
	return true, nil
}

// zeroed reports whether h has zero salts and checksums: SQLite wrote it
// while it owed the open transaction a checksum rewrite (doc.go).
func (h FrameHeader) zeroed() bool {
	return h.Salt1 == 0 && h.Salt2 == 0 && h.Checksum1 == 0 && h.Checksum2 == 0
}

// readFrameHeader reads the header of frame i; ok is false when the file
// does not hold it.
func (c *Capture) readFrameHeader(r io.ReaderAt, i int) (FrameHeader, bool, error) {
	var b [FrameHeaderSize]byte
	off := c.frameOffset(i)
	if n, err := r.ReadAt(b[:], off); n < len(b) {
		if err == io.EOF || err == nil {
			return FrameHeader{}, false, nil
		}
		return FrameHeader{}, false, fmt.Errorf("read wal frame %d at offset %d: %w", i, off, err)
	}
	return ParseFrameHeader(b[:]), true, nil
}
