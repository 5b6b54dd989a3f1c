package follow

import "encoding/binary"

// Offsets in page 1 that the follower presents differently (sqlite.org
// fileformat2.html, "The Database Header").
const (
	offWriteVersion = 18 // 1: rollback journal, 2: WAL; read version at 19
	offChangeCount  = 24
	offPageCount    = 28
	offValidFor     = 92
	headerLen       = 100
)

// PatchHeader rewrites the bytes of page 1 that make a followed database
// readable by any SQLite without a -shm: both format versions say rollback
// journal; the change counter (and the version-valid-for number that makes
// SQLite trust the in-header size) move with every update the follower
// applies, so a reader that cached pages drops them; the in-header size is
// the database's size now. p holds file bytes starting at off; files the
// follower does not follow are left alone. It implements
// fusefs.HeaderPatcher.
func (f *Follower) PatchHeader(rel string, off int64, p []byte) {
	if off >= headerLen || off+int64(len(p)) <= offWriteVersion {
		return
	}
	f.mu.RLock()
	st := f.dbs[rel]
	var counter, pages uint32
	if st != nil {
		counter, pages = uint32(st.txid), st.pages
	}
	f.mu.RUnlock()
	if st == nil {
		return
	}
	var want [headerLen]byte
	want[offWriteVersion], want[offWriteVersion+1] = 1, 1
	binary.BigEndian.PutUint32(want[offChangeCount:], counter)
	binary.BigEndian.PutUint32(want[offPageCount:], pages)
	binary.BigEndian.PutUint32(want[offValidFor:], counter)
	for _, r := range [][2]int{{offWriteVersion, 2}, {offChangeCount, 8}, {offValidFor, 4}} {
		for i := r[0]; i < r[0]+r[1]; i++ {
			if j := int64(i) - off; j >= 0 && j < int64(len(p)) {
				p[j] = want[i]
			}
		}
	}
}
