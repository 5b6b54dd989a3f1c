package replicate

import "math/bits"

// dirtyUnit is the granularity of dirtySet: the smallest SQLite page size.
const dirtyUnit = 512

// dirtySet remembers which parts of a database file were written since the
// last commit, in 512-byte units, so the page size can change in between
// (VACUUM after PRAGMA page_size). In rollback-journal mode this, not the
// journal, is the list of changed pages: SQLite does not journal a free-list
// page it reuses, because its old content does not matter for rollback.
type dirtySet struct {
	bits []uint64
}

func (s *dirtySet) add(off int64, n int) {
	if n <= 0 || off < 0 {
		return
	}
	first, last := off/dirtyUnit, (off+int64(n)-1)/dirtyUnit
	if need := int(last/64) + 1; need > len(s.bits) {
		s.bits = append(s.bits, make([]uint64, need-len(s.bits))...)
	}
	for u := first; u <= last; u++ {
		s.bits[u/64] |= 1 << (u % 64)
	}
}

// pages returns, in order, the pages of pageSize bytes that hold a written
// unit, up to page size.
func (s *dirtySet) pages(pageSize, size uint32) []uint32 {
	var out []uint32
	per := int64(pageSize) / dirtyUnit
	last := uint32(0)
	for w, word := range s.bits {
		for word != 0 {
			u := int64(w)*64 + int64(bits.TrailingZeros64(word))
			word &= word - 1
			p := uint32(u/per) + 1
			if p > size {
				return out
			}
			if p != last {
				out = append(out, p)
				last = p
			}
		}
	}
	return out
}

func (s *dirtySet) reset() { s.bits = s.bits[:0] }

func (s *dirtySet) empty() bool { return len(s.bits) == 0 }
