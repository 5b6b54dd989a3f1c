package wal

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Which pages a committed rollback-journal transaction changed, read from its
// journal and the database file alone, without watching the writes.
//
// SQLite journals a page before it first changes it in a transaction
// (pager.c pager_write), with three exceptions:
//   - pages past the database's original size: nothing to restore
//     (pager_write journals only pgno <= dbOrigSize);
//   - free-list leaves it reuses: btree.c allocateBtreePage asks the pager
//     for them with PAGER_GET_NOCONTENT, which marks them journaled without
//     journaling them (pager.c getPageNormal), since a free leaf's content
//     does not matter to a rollback;
//   - the destination of a page moved by autovacuum (sqlite3PagerMovepage
//     marks it dirty directly): always a free page that allocateBtreePage
//     just took off the free list.
//
// Every change to the free list writes page 1 (its count) and the trunk
// page that lists the leaf (freePage2, allocateBtreePage), so both are in
// the journal with their original content. The changed pages are therefore
//
//  1. every page the journal holds;
//  2. every page past the original size (the smaller of the journal's and
//     the original page 1's in-header size: SQLite allocates past the
//     in-header size with PAGER_GET_NOCONTENT);
//  3. every page on the original free list that is not on the new one.
//
// One more case needs the page's content: a leaf reused after a savepoint
// began (SAVEPOINT, or the statement transaction of a statement inside
// BEGIN) and given back by ROLLBACK TO that savepoint (or by the statement's
// failure) is on both lists, yet its new content reaches the file at the
// commit: the savepoint restores the trunk from the statement journal, but
// never saved the leaf (pager.c getPageNormal marks a PAGER_GET_NOCONTENT
// page as saved), so the leaf stays dirty. A leaf freed again while a
// savepoint is open, or after the cache spilled it, can reach the file the
// same way (sqlite3PagerDontWrite drops only clean-able pages with no
// savepoint open). Such a leaf was taken off a trunk page, so that trunk is
// journaled. The leaves of journaled original trunks that are
// trunks now are rewritten; those still leaves are returned as Unsure:
// changed only if their bytes differ from what they were, which the caller
// checks against its copy. (A free leaf's bytes mean nothing to SQLite, a
// trunk's do.)
//
// The original free list is read from the original page 1 and trunk pages:
// the journal's copy when the transaction changed them, else the database
// file, where they are unchanged.

// RollbackChange is what a committed rollback-journal transaction changed.
type RollbackChange struct {
	// All reports that the rule cannot tell which pages changed (the page
	// size changed, or the original free list cannot be read): treat every
	// page as changed. Pages and Unsure are then empty.
	All bool
	// Pages are the pages that may have changed, sorted, at most the
	// database's size.
	Pages []uint32
	// Unsure are original free-list leaves still free after the
	// transaction that may have been reused and freed again: changed only
	// if their content differs from before. Sorted, disjoint from Pages.
	Unsure []uint32
	// Page1 is page 1 as it was before the transaction. A caller that
	// holds its own copy of the database before the transaction can tell
	// from it whether something changed the file without a journal since
	// (journal_mode=MEMORY or OFF commits, another writer): every commit in
	// rollback mode changes page 1's change counter, except in EXCLUSIVE
	// locking mode, where only the first commit of a connection does.
	Page1 []byte
}

// RollbackChanges returns the pages the transaction that j describes
// changed. journal reads the journal j was parsed from; db reads the database
// file after the transaction, whose page size and size in pages the caller
// gives (as it reads them from the file's header).
func RollbackChanges(j *Journal, journal, db io.ReaderAt, pageSize, size uint32) (*RollbackChange, error) {
	if j.PageSize != pageSize {
		return &RollbackChange{All: true}, nil // VACUUM with a new page_size
	}
	r := rollbackReader{j: j, journal: journal, db: db, pageSize: pageSize, size: size}
	ch := &RollbackChange{}
	page1, err := r.orig(1)
	if err != nil {
		return nil, err
	}
	if page1 == nil {
		return &RollbackChange{All: true}, nil
	}
	ch.Page1 = page1

	changed := make(map[uint32]bool)
	add := func(p uint32) {
		if p >= 1 && p <= size {
			changed[p] = true
		}
	}
	for _, p := range j.Pages {
		add(p)
	}
	newFrom := j.OrigSize
	if h, ok := ParseDBHeader(page1); ok && h.PageCount > 0 && h.PageCount < newFrom {
		newFrom = h.PageCount
	}
	for p := newFrom + 1; p <= size; p++ {
		add(p)
	}
	if _, journaled := j.orig[1]; journaled && j.OrigSize > 0 {
		// Page 1 changed, so the free list may have: compare the lists.
		before, ok, err := r.freeList(page1, r.orig, j.OrigSize)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &RollbackChange{All: true}, nil
		}
		cur, err := r.current(1)
		if err != nil {
			return nil, err
		}
		after, ok, err := r.freeList(cur, r.current, size)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &RollbackChange{All: true}, nil
		}
		for p := range before.pages {
			if !after.pages[p] {
				add(p)
			}
		}
		isTrunk := make(map[uint32]bool, len(after.trunks))
		for _, t := range after.trunks {
			isTrunk[t] = true
		}
		unsure := make(map[uint32]bool)
		for _, t := range before.trunks {
			if _, journaled := j.orig[t]; !journaled {
				continue // unchanged: none of its leaves left it
			}
			for _, p := range before.leaves[t] {
				switch {
				case !after.pages[p] || p > size || changed[p]:
				case isTrunk[p]:
					add(p) // a leaf that became a trunk: rewritten
				default:
					unsure[p] = true
				}
			}
		}
		ch.Unsure = sortedKeys(unsure)
	}
	ch.Pages = sortedKeys(changed)
	return ch, nil
}

// rollbackReader reads pages of the database before and after a
// transaction.
type rollbackReader struct {
	j              *Journal
	journal, db    io.ReaderAt
	pageSize, size uint32
}

// orig returns page p as it was before the transaction; nil if it is
// neither in the journal nor in the file (truncated away unjournaled).
func (r *rollbackReader) orig(p uint32) ([]byte, error) {
	if off, ok := r.j.orig[p]; ok {
		b := make([]byte, r.pageSize)
		if _, err := r.journal.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("read page %d from journal: %w", p, err)
		}
		return b, nil
	}
	if p > r.j.OrigSize {
		return nil, nil
	}
	return r.current(p)
}

// current returns page p of the database file now; nil past its end.
func (r *rollbackReader) current(p uint32) ([]byte, error) {
	if p < 1 || p > r.size {
		return nil, nil
	}
	b := make([]byte, r.pageSize)
	n, err := r.db.ReadAt(b, int64(p-1)*int64(r.pageSize))
	if n == len(b) {
		return b, nil
	}
	if err == io.EOF {
		return nil, nil
	}
	return nil, fmt.Errorf("read page %d from database: %w", p, err)
}

// freeList is a database's free list.
type freeList struct {
	trunks []uint32
	leaves map[uint32][]uint32 // by trunk
	pages  map[uint32]bool     // trunks and leaves
}

// freeList walks the free list that page1 heads, reading trunks with read,
// in a database of size pages. ok is false when the list cannot be read
// whole: a trunk unreadable, out of range or seen twice, a leaf count too
// big (SQLite would report corruption; the caller then trusts nothing).
func (r *rollbackReader) freeList(page1 []byte, read func(uint32) ([]byte, error), size uint32) (freeList, bool, error) {
	l := freeList{leaves: make(map[uint32][]uint32), pages: make(map[uint32]bool)}
	if len(page1) < 36 || r.pageSize < 512 {
		return l, false, nil // no page 1 (an empty file now) or no real page size: read nothing
	}
	maxLeaves := r.pageSize/4 - 2
	for t := binary.BigEndian.Uint32(page1[32:]); t != 0; {
		if t > size || l.pages[t] {
			return l, false, nil
		}
		b, err := read(t)
		if err != nil || b == nil {
			return l, false, err
		}
		l.trunks = append(l.trunks, t)
		l.pages[t] = true
		k := binary.BigEndian.Uint32(b[4:])
		if k > maxLeaves {
			return l, false, nil
		}
		leaves := make([]uint32, 0, k)
		for i := range k {
			p := binary.BigEndian.Uint32(b[8+4*i:])
			leaves = append(leaves, p)
			l.pages[p] = true
		}
		l.leaves[t] = leaves
		t = binary.BigEndian.Uint32(b[0:])
	}
	return l, true, nil
}

func sortedKeys(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
