package replicate

import "github.com/superfly/ltx"

// pageSums is the checksum of every page of one database, maintained
// incrementally so each transaction's post-apply checksum costs O(pages
// changed). The lock page never has a checksum.
type pageSums struct {
	pageSize uint32
	sums     []ltx.Checksum // index pgno-1
	xor      ltx.Checksum   // XOR of sums, without ltx.ChecksumFlag
	journal  *undo          // open transaction, if any
}

func newPageSums(pageSize uint32) *pageSums { return &pageSums{pageSize: pageSize} }

// set records the content of pgno.
func (p *pageSums) set(pgno uint32, data []byte) {
	if pgno == ltx.LockPgno(p.pageSize) {
		return
	}
	p.grow(pgno)
	if p.journal != nil {
		p.journal.old = append(p.journal.old, undoEntry{int(pgno - 1), p.sums[pgno-1]})
	}
	sum := ltx.ChecksumPage(pgno, data)
	p.xor ^= p.sums[pgno-1] ^ sum
	p.sums[pgno-1] = sum
}

// truncate drops pages beyond commit and makes room up to it.
func (p *pageSums) truncate(commit uint32) {
	if p.journal != nil && int(commit) < len(p.sums) && p.journal.tail == nil {
		p.journal.tail = append([]ltx.Checksum(nil), p.sums[commit:]...)
		p.journal.n = len(p.sums)
	}
	for i := int(commit); i < len(p.sums); i++ {
		p.xor ^= p.sums[i]
	}
	if int(commit) < len(p.sums) {
		p.sums = p.sums[:commit]
	}
	p.grow(commit)
}

func (p *pageSums) grow(n uint32) {
	if int(n) <= len(p.sums) {
		return
	}
	if int(n) <= cap(p.sums) {
		old := len(p.sums)
		p.sums = p.sums[:n]
		clear(p.sums[old:])
		return
	}
	sums := make([]ltx.Checksum, n, max(int(n), 2*cap(p.sums)))
	copy(sums, p.sums)
	p.sums = sums
}

// holds reports whether pgno's recorded content is data.
func (p *pageSums) holds(pgno uint32, data []byte) bool {
	if pgno == ltx.LockPgno(p.pageSize) {
		return true
	}
	return int(pgno) <= len(p.sums) && p.sums[pgno-1] == ltx.ChecksumPage(pgno, data)
}

// size is the database size in pages.
func (p *pageSums) size() uint32 { return uint32(len(p.sums)) }

// checksum is the database checksum in LTX form.
func (p *pageSums) checksum() ltx.Checksum { return ltx.ChecksumFlag | p.xor }

// undo records how to put pageSums back after a failed transaction. It
// costs O(pages changed), not O(database).
type undo struct {
	n    int
	xor  ltx.Checksum
	old  []undoEntry
	tail []ltx.Checksum
}

type undoEntry struct {
	i   int
	sum ltx.Checksum
}

// begin starts a change that revert can roll back; changes are journaled
// until commitUndo or revert.
func (p *pageSums) begin() *undo {
	p.journal = &undo{n: len(p.sums), xor: p.xor}
	return p.journal
}

// commitUndo ends the journal.
func (p *pageSums) commitUndo() { p.journal = nil }

func (p *pageSums) revert(u *undo) {
	for i := len(u.old) - 1; i >= 0; i-- {
		e := u.old[i]
		p.grow(uint32(e.i + 1))
		p.sums[e.i] = e.sum
	}
	if u.tail != nil {
		p.grow(uint32(u.n))
		copy(p.sums[u.n-len(u.tail):], u.tail)
	}
	if len(p.sums) > u.n {
		p.sums = p.sums[:u.n]
	}
	p.xor = u.xor
	p.journal = nil
}
