package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// A rollback journal ("-journal") holds the original content of every page a
// transaction changed, so SQLite can undo it. In DELETE, TRUNCATE and PERSIST
// journal modes (and in EXCLUSIVE locking mode) the transaction commits when
// the journal stops being valid: the file is deleted, truncated, or its header
// zeroed. Just before that moment the journal names exactly the pages the
// transaction wrote into the database file at or below its original size;
// pages past the original size are new and never journaled.
//
// Layout (SQLite's pager.c): a series of segments, each starting at a
// multiple of the sector size with a header of one sector:
//
//	0  8 magic d9 d5 05 f9 20 a1 63 d7 (zero until the segment is synced)
//	8  4 record count (0xFFFFFFFF: "up to the end of the file", no-sync mode)
//	12 4 checksum nonce
//	16 4 database size in pages before the transaction
//	20 4 sector size
//	24 4 page size
//
// followed by records of a 4-byte page number, the page and a 4-byte checksum
// (the header's nonce plus every 200th byte of the page, from the end:
// pager.c pager_cksum). A segment whose magic is missing was never synced:
// SQLite writes no database page before syncing the journal records that
// protect it, so such segments (and a super-journal name at the end) are not
// part of the change. In a segment whose record count says "to the end of
// the file" (synchronous=OFF, or zero) a record whose checksum does not match
// ends the journal, as it ends SQLite's playback: what follows is left over
// from an older transaction (PERSIST and TRUNCATE modes, EXCLUSIVE locking
// mode). A counted segment is the transaction's own.

// JournalHeaderSize is how many leading bytes of a journal SQLite zeroes to
// commit in PERSIST mode.
const JournalHeaderSize = 28

var journalMagic = [8]byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7}

// Journal is what a live rollback journal says about its transaction.
type Journal struct {
	PageSize uint32   // page size from the first header
	OrigSize uint32   // database size in pages before the transaction
	Pages    []uint32 // journaled pages, sorted, each once

	// orig is where the first record of each page keeps the page's
	// content before the transaction (the offset of the page data).
	orig map[uint32]int64
}

// ErrBadJournal reports a journal header that cannot be SQLite's.
var ErrBadJournal = errors.New("malformed rollback journal")

// ReadJournal parses the rollback journal in r (size bytes). It returns nil
// when the journal holds no live transaction: empty, or its header zeroed.
func ReadJournal(r io.ReaderAt, size int64) (*Journal, error) {
	var j *Journal
	var hdr [JournalHeaderSize]byte
	var rec []byte // one record: page number, page, checksum
	for off := int64(0); off+JournalHeaderSize <= size; {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return nil, fmt.Errorf("read journal header at %d: %w", off, err)
		}
		if !IsJournalMagic(hdr[:]) {
			break
		}
		nrec := binary.BigEndian.Uint32(hdr[8:])
		sector := int64(binary.BigEndian.Uint32(hdr[20:]))
		pageSize := binary.BigEndian.Uint32(hdr[24:])
		if sector < 32 || sector > 65536 || sector&(sector-1) != 0 {
			return nil, fmt.Errorf("%w: sector size %d at offset %d", ErrBadJournal, sector, off)
		}
		if !ValidPageSize(pageSize) {
			return nil, fmt.Errorf("%w: page size %d at offset %d", ErrBadJournal, pageSize, off)
		}
		nonce := binary.BigEndian.Uint32(hdr[12:])
		if j == nil {
			j = &Journal{PageSize: pageSize, OrigSize: binary.BigEndian.Uint32(hdr[16:]), orig: make(map[uint32]int64)}
			rec = make([]byte, pageSize+8)
		} else if pageSize != j.PageSize {
			return nil, fmt.Errorf("%w: page size changes from %d to %d at offset %d", ErrBadJournal, j.PageSize, pageSize, off)
		}
		recSize := int64(pageSize) + 8
		start := off + sector
		fit := max(size-start, 0) / recSize
		n := int64(nrec)
		if nrec == 0xFFFFFFFF || nrec == 0 {
			// No-sync journals, and a last segment still being filled, say
			// nothing: take every whole record up to the end of the file.
			n = fit
		}
		n = min(n, fit)
		// Only a segment that runs to the end of the file can hold records
		// of an older transaction: read whole records there to check them,
		// elsewhere just the page numbers.
		toEOF := nrec == 0xFFFFFFFF || nrec == 0
		read := rec[:4]
		if toEOF {
			read = rec
		}
		stale := false
		for i := int64(0); i < n; i++ {
			at := start + i*recSize
			if _, err := r.ReadAt(read, at); err != nil {
				return nil, fmt.Errorf("read journal record at %d: %w", at, err)
			}
			p := binary.BigEndian.Uint32(rec)
			if p == 0 { // past the records SQLite wrote
				n = i
				break
			}
			if toEOF && journalChecksum(nonce, rec[4:4+pageSize]) != binary.BigEndian.Uint32(rec[4+pageSize:]) {
				stale = true
				break
			}
			if _, ok := j.orig[p]; !ok {
				j.orig[p] = at + 4
				j.Pages = append(j.Pages, p)
			}
		}
		end := start + n*recSize
		off = (end + sector - 1) / sector * sector // next segment: next sector boundary
		if stale || toEOF {
			break
		}
	}
	if j != nil {
		slices.Sort(j.Pages)
	}
	return j, nil
}

// journalChecksum is SQLite's checksum of a journal record's page.
func journalChecksum(nonce uint32, page []byte) uint32 {
	sum := nonce
	for i := len(page) - 200; i > 0; i -= 200 {
		sum += uint32(page[i])
	}
	return sum
}

// IsJournalMagic reports whether b starts with a journal header's magic.
func IsJournalMagic(b []byte) bool {
	return len(b) >= len(journalMagic) && [8]byte(b[:8]) == journalMagic
}

// IsJournalCommit reports whether a write of data at off to a journal is
// SQLite zeroing the header, which commits the transaction in PERSIST mode
// and in EXCLUSIVE locking mode. A new transaction's first header has a zero
// magic too, but its sector and page size fields are not zero.
func IsJournalCommit(off int64, data []byte) bool {
	if off != 0 || len(data) < JournalHeaderSize {
		return false
	}
	for _, b := range data[:JournalHeaderSize] {
		if b != 0 {
			return false
		}
	}
	return true
}
