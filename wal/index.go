package wal

// Index is the committed state of one WAL generation: for every page, where
// the image of its latest committed frame lies. Together with the database
// file (which holds everything checkpointed before this generation) it is the
// database as SQLite sees it.
type Index struct {
	PageSize     uint32           // 0 when the WAL has no valid header
	DBSize       uint32           // db size in pages after the last committed txn; 0 if none in this generation
	Pages        map[uint32]int64 // pgno -> file offset of the page data of its latest committed frame (pgno <= DBSize)
	Salt1, Salt2 uint32
	End          int64 // offset just past the last committed frame (HeaderSize when none)
}

// applyCommitted records frames [first, last] (one transaction, ending in a
// commit frame) in the committed index. Pages beyond the database size stay
// in the map and are filtered out by Committed, as SQLite's readers and
// checkpoint ignore them: if the database grows again, SQLite looks such a
// page up in the whole generation.
func (c *Capture) applyCommitted(first, last int) {
	for i := first; i <= last; i++ {
		c.pages[c.frames[i].pgno] = c.dataOffset(i)
	}
	c.dbSize = c.frames[last].commit
	c.ncommit = last + 1
	c.tailChecked = 0
}

// rebuildIndex recomputes the committed index from the frame list after the
// committed prefix was cut back to n frames (a truncation or an in-place
// rewrite of committed frames, neither of which SQLite does mid-generation).
func (c *Capture) rebuildIndex(n int) {
	c.frames = c.frames[:n]
	clear(c.pages)
	c.dbSize = 0
	c.ncommit = 0
	first := 0
	for i := 0; i < n; i++ {
		if c.frames[i].commit != 0 {
			c.applyCommitted(first, i)
			first = i + 1
		}
	}
}

// Committed returns a copy of the index of committed pages of the current WAL
// generation, for snapshots taken mid-life. The caller owns the result.
// Called from inside Sink.Commit, it describes the state before the
// transaction being committed.
func (c *Capture) Committed() *Index {
	idx := &Index{
		Pages: make(map[uint32]int64, len(c.pages)),
		End:   HeaderSize,
	}
	for pgno, off := range c.pages {
		if pgno <= c.dbSize {
			idx.Pages[pgno] = off
		}
	}
	if c.gen {
		idx.PageSize = c.hdr.PageSize
		idx.DBSize = c.dbSize
		idx.Salt1, idx.Salt2 = c.hdr.Salt1, c.hdr.Salt2
		idx.End = c.frameOffset(c.ncommit)
	}
	return idx
}

// Follows reports whether later, a capture of the same file that Load
// positioned, sees c's generation with c's committed frames unchanged at
// its start: the WAL only grew since c last looked. ahead is how many
// frames later committed beyond c's. Two captures that see no generation
// follow each other.
func (c *Capture) Follows(later *Capture) (ahead int, ok bool) {
	if !c.gen || !later.gen {
		return 0, !c.gen && !later.gen
	}
	if c.raw != later.raw || later.ncommit < c.ncommit {
		return 0, false
	}
	if n := c.ncommit; n > 0 {
		a, b := c.frames[n-1], later.frames[n-1]
		if a.pgno != b.pgno || a.commit != b.commit || a.ck1 != b.ck1 || a.ck2 != b.ck2 {
			return 0, false
		}
	}
	return later.ncommit - c.ncommit, true
}
