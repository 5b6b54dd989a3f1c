package wal

import "io"

// The open-tail rule. Poll revalidates the frames after the last commit on
// every call: SQLite may overwrite frames of an open transaction in place
// (cache spill), so what validated once may not stay valid, and a commit
// frame is found only by validating every frame before it. A transaction
// that spills a large part of itself into the WAL was so read back and
// checksummed once per poll while it was open: 2 GB for a 100 MB
// transaction.
//
// SQLite's wal-index says where the last commit is. Its writer updates the
// header at every commit before it releases the WAL write lock, so before
// any frame of a later transaction is written: when the last complete frame
// in the file is not a commit frame, every commit before it is one the
// wal-index names (or a frame still being written completes later, and the
// write wakes another poll). PollIndexed therefore validates up to the
// wal-index's last commit and no further, unless
//   - the last complete frame in the file is a commit frame (a commit whose
//     wal-index header may not be written yet), or not a frame of this
//     generation: after a restart the file keeps the frames of a longer
//     generation behind this one's, and this one's last frame, which may be
//     a commit, is somewhere before them,
//   - the frames after the last commit have grown to at least tailMin and
//     twice what was last validated of them: a wal-index that is not live
//     (a connection in exclusive locking mode keeps its own in heap memory,
//     and a -shm left by an earlier process can name the same generation)
//     delays a commit only that long, and a growing transaction is read
//     about twice in all,
//   - the poll is a CatchUp, before a checkpoint may restart the WAL.
// A wal-index that does not describe this generation, or that was refused,
// is not used: every frame is validated as before. One exception: before
// the first commit in a new WAL file the wal-index header has no salts and
// no frames (SQLite writes them at that commit), which names no commit of
// any generation.

// SkippedTail reports whether the last poll left frames after the
// wal-index's last commit unread. One case the rule cannot see: a commit
// written over frames of a transaction rolled back before it, its wal-index
// header not yet written when the poll read it, with no write after it to
// wake another poll. The caller polls in full (CatchUp) once writes stop.
func (c *Capture) SkippedTail() bool { return c.skipped }

// tailMin is the fewest open-transaction frames validated on growth alone.
const tailMin = 64

// openTail returns the frame up to which a poll validates (the last commit
// of h, a wal-index header of this generation (indexOf), or the capture's
// if that is later), or -1 for as far as the file allows.
func (c *Capture) openTail(r io.ReaderAt, h indexHeader, size int64) (int, error) {
	upto := max(int(h.maxFrame), c.ncommit)
	inFile := int((size - HeaderSize) / c.frameSize())
	tail := inFile - upto
	if tail <= 0 {
		return -1, nil
	}
	if tail >= tailMin && tail >= 2*c.tailChecked {
		c.tailChecked = tail
		return -1, nil
	}
	fh, ok, err := c.readFrameHeader(r, inFile-1)
	ours := fh.Salt1 == c.hdr.Salt1 && fh.Salt2 == c.hdr.Salt2 || fh.zeroed()
	if err != nil || !ok || fh.Commit != 0 || !ours {
		return -1, err
	}
	return upto, nil
}
