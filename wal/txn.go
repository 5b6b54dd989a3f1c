package wal

import (
	"cmp"
	"io"
	"slices"
)

// PageRef locates one page image inside the WAL file.
type PageRef struct {
	Pgno   uint32
	Offset int64 // file offset of the page DATA (frame offset + 24)
}

// Txn is a committed transaction: a run of valid frames ending in a commit
// frame, valid under SQLite's recovery rule or the pending-rewrite rule (see
// the package documentation).
type Txn struct {
	PageSize     uint32
	Commit       uint32 // database size in pages after the transaction
	Salt1, Salt2 uint32
	Offset       int64 // file offset of the transaction's first frame
	End          int64 // file offset just past its commit frame
	// Pages holds, in ascending Pgno, exactly one entry per page: the last
	// frame of that page within the transaction. Pages beyond Commit are left
	// out (a transaction that shrinks the database may have spilled them
	// earlier; SQLite's checkpoint skips them too).
	Pages []PageRef
}

// Sink receives committed transactions.
//
// Commit is called synchronously from Capture.Wrote and Capture.Poll, in
// commit order. It must read the page data it needs from r (the WAL file)
// before it returns: the frames may be overwritten once the call returns. The
// Txn and its Pages are the sink's to keep. A non-nil error makes the capture
// treat the commit frame as not yet validated, and is returned (wrapped) to
// the caller of Wrote or Poll.
type Sink interface {
	Commit(txn *Txn, r io.ReaderAt) error
}

// newTxn builds the transaction made of frames [first, last] of the current
// generation. scratch is reused between calls (up to keepFrames); the
// returned Pages are not.
func (c *Capture) newTxn(first, last int) *Txn {
	commit := c.frames[last].commit
	refs := c.scratch[:0]
	for i := first; i <= last; i++ {
		if pgno := c.frames[i].pgno; pgno <= commit {
			refs = append(refs, PageRef{Pgno: pgno, Offset: c.dataOffset(i)})
		}
	}
	// Stable sort keeps frame order within a page, so the last of each run
	// of equal page numbers is the page's last frame.
	slices.SortStableFunc(refs, func(a, b PageRef) int { return cmp.Compare(a.Pgno, b.Pgno) })
	n := 0
	for i := range refs {
		if i+1 == len(refs) || refs[i+1].Pgno != refs[i].Pgno {
			n++
		}
	}
	pages := make([]PageRef, 0, n)
	for i := range refs {
		if i+1 == len(refs) || refs[i+1].Pgno != refs[i].Pgno {
			pages = append(pages, refs[i])
		}
	}
	c.scratch = refs[:0]
	if cap(refs) > keepFrames {
		c.scratch = nil // sized by a big transaction: not worth keeping
	}
	return &Txn{
		PageSize: c.hdr.PageSize,
		Commit:   commit,
		Salt1:    c.hdr.Salt1,
		Salt2:    c.hdr.Salt2,
		Offset:   c.frameOffset(first),
		End:      c.frameOffset(last + 1),
		Pages:    pages,
	}
}
