package wal

import "encoding/binary"

// StateDirName is the directory inside a data dir that holds walfs's own
// state (spool, positions, cache, control socket, default replica). The mount
// hides it and every scan of the data dir skips it.
const StateDirName = ".walfs"

// DBHeaderSize is the size of the SQLite database file header (the first
// 100 bytes of page 1).
const DBHeaderSize = 100

// dbMagic starts every SQLite database file.
const dbMagic = "SQLite format 3\x00"

// DBHeader is what walfs reads from a database file's header.
type DBHeader struct {
	PageSize uint32 // 512..65536
	// PageCount is the in-header database size, 0 when SQLite would not
	// trust it (not marked valid by a matching version-valid-for number).
	PageCount uint32
	WALMode   bool   // read and write versions are 2: the database is in WAL mode
	FreePages uint32 // pages on the free list (0 when b is shorter than DBHeaderSize)
}

// IsDBHeader reports whether b starts with the SQLite database magic.
func IsDBHeader(b []byte) bool {
	return len(b) >= len(dbMagic) && string(b[:len(dbMagic)]) == dbMagic
}

// ParseDBHeader reads the header at the start of b (at least 20 bytes for
// the page size and mode, DBHeaderSize for the page count). ok is false for
// anything that is not a SQLite database header.
func ParseDBHeader(b []byte) (h DBHeader, ok bool) {
	if len(b) < 20 || !IsDBHeader(b) {
		return DBHeader{}, false
	}
	h.PageSize = uint32(binary.BigEndian.Uint16(b[16:18]))
	if h.PageSize == 1 {
		h.PageSize = MaxPageSize
	}
	if h.PageSize < MinPageSize || h.PageSize > MaxPageSize || h.PageSize&(h.PageSize-1) != 0 {
		return DBHeader{}, false
	}
	h.WALMode = b[18] == 2 && b[19] == 2
	// SQLite trusts the in-header size only when the change counter (24)
	// matches version-valid-for (92) (btree.c lockBtree).
	if len(b) >= DBHeaderSize && binary.BigEndian.Uint32(b[92:96]) == binary.BigEndian.Uint32(b[24:28]) {
		h.PageCount = binary.BigEndian.Uint32(b[28:32])
	}
	if len(b) >= DBHeaderSize {
		h.FreePages = binary.BigEndian.Uint32(b[36:40])
	}
	return h, true
}
