package wal

import (
	"encoding/binary"
	"io"
)

// The wal-index (the -shm file) is SQLite's shared memory for one WAL: a
// header that says which frames are committed, then for every frame the page
// it holds, in 32 KiB blocks (wal.c: WalIndexHdr, WALINDEX_PGSZ,
// HASHTABLE_NPAGE). It is in the byte order of the machine that wrote it.
//
//	offset  size  field (first header copy; the second follows at 48)
//	     0     4  iVersion, 3007000
//	    12     1  isInit, 1
//	    13     1  bigEndCksum: the WAL's checksums are big-endian
//	    14     2  szPage: page size, 65536 stored as 1
//	    16     4  mxFrame: frames 1..mxFrame are committed
//	    20     4  nPage: database size in pages after the last commit
//	    24     8  aFrameCksum: the checksum stored in frame mxFrame
//	    32     8  aSalt: the WAL header's salts, bytes as in the WAL header
//	    40     8  aCksum: checksum of bytes 0..40, native word order
//	    96    40  WalCkptInfo (nBackfill first)
//
// Block 0 holds after those 136 bytes the page numbers of frames 1..4062
// (4 bytes each), block k > 0 those of the next 4096 frames from its start;
// each block ends in a hash table of 8192 two-byte slots.
const (
	indexHeaderSize       = 48
	indexHeaderRegion     = 136 // WALINDEX_HDR_SIZE: both header copies and WalCkptInfo
	indexBlockSize        = 32768
	indexBlockFrames      = 4096
	indexFirstBlockFrames = indexBlockFrames - indexHeaderRegion/4
	indexVersion          = 3007000
	indexBackfillOffset   = 2 * indexHeaderSize // WalCkptInfo.nBackfill
)

// indexHeader is what capture uses of a wal-index header that passed
// readIndexHeader's checks.
type indexHeader struct {
	maxFrame  uint32  // frames 1..maxFrame (1-based) are committed
	dbSize    uint32  // database size in pages after frame maxFrame's commit
	ck1, ck2  uint32  // checksum stored in frame maxFrame
	salt      [8]byte // the WAL header's bytes 16..24
	pageSize  uint32
	bigEndian bool // the WAL's checksum byte order
}

// nativeBigEndian is the byte order of this machine, which is the
// wal-index's: it is shared memory between processes on one machine.
var nativeBigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

// readIndexHeader reads the wal-index header from shm and reports whether it
// is one SQLite would use without running recovery: both copies equal (no
// writer is halfway through updating it), initialised, the version SQLite
// writes, and its own checksum valid. Anything else, including a read error,
// is ok == false: the caller then validates the WAL itself, which never
// needs the wal-index.
func readIndexHeader(shm io.ReaderAt) (indexHeader, bool) {
	var b [2 * indexHeaderSize]byte
	//walfs:ignore-error an unreadable wal-index is not used: the WAL is then validated from its own bytes
	if n, _ := shm.ReadAt(b[:], 0); n < len(b) {
		return indexHeader{}, false
	}
	h1, h2 := b[:indexHeaderSize], b[indexHeaderSize:]
	if string(h1) != string(h2) {
		return indexHeader{}, false
	}
	ne := binary.NativeEndian
	if ne.Uint32(h1[0:]) != indexVersion || h1[12] != 1 {
		return indexHeader{}, false
	}
	s1, s2 := Checksum(nativeBigEndian, 0, 0, h1[:40])
	if s1 != ne.Uint32(h1[40:]) || s2 != ne.Uint32(h1[44:]) {
		return indexHeader{}, false
	}
	ps := uint32(ne.Uint16(h1[14:]))
	if ps == 1 {
		ps = MaxPageSize
	}
	h := indexHeader{
		maxFrame:  ne.Uint32(h1[16:]),
		dbSize:    ne.Uint32(h1[20:]),
		ck1:       ne.Uint32(h1[24:]),
		ck2:       ne.Uint32(h1[28:]),
		pageSize:  ps,
		bigEndian: h1[13] != 0,
	}
	copy(h.salt[:], h1[32:40])
	return h, true
}

// IndexCheckpointed reports whether the wal-index in shm says every frame
// of its WAL was copied into the database (nBackfill >= mxFrame). A
// wal-index SQLite would not use (no -shm, a torn or damaged header, a read
// error) counts as not.
func IndexCheckpointed(shm io.ReaderAt) bool {
	h, ok := readIndexHeader(shm)
	if !ok {
		return false
	}
	var b [4]byte
	//walfs:ignore-error unknown counts as not checkpointed, which is the safe answer
	if n, _ := shm.ReadAt(b[:], indexBackfillOffset); n < len(b) {
		return false
	}
	return binary.NativeEndian.Uint32(b[:]) >= h.maxFrame
}

// indexPgnoOffset returns the offset in the wal-index of the page number of
// frame i (0-based, as Capture counts them; SQLite counts from 1).
func indexPgnoOffset(i int) int64 {
	if i < indexFirstBlockFrames {
		return indexHeaderRegion + 4*int64(i)
	}
	i -= indexFirstBlockFrames
	return int64(1+i/indexBlockFrames)*indexBlockSize + 4*int64(i%indexBlockFrames)
}

// readIndexPgnos reads the page numbers the wal-index records for frames
// [from, to) (0-based) into dst[:to-from], one read per 32 KiB block. ok is
// false when shm does not hold them all.
func readIndexPgnos(shm io.ReaderAt, from, to int, dst []uint32, buf []byte) (ok bool, _ []byte) {
	ne := binary.NativeEndian
	for i := from; i < to; {
		// Frames up to the end of the block holding frame i.
		end := indexFirstBlockFrames
		if i >= indexFirstBlockFrames {
			end = indexFirstBlockFrames + (1+(i-indexFirstBlockFrames)/indexBlockFrames)*indexBlockFrames
		}
		end = min(end, to)
		n := 4 * (end - i)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		//walfs:ignore-error an unreadable wal-index is not used: the WAL is then validated from its own bytes
		if got, _ := shm.ReadAt(b, indexPgnoOffset(i)); got < n {
			return false, buf
		}
		for k := range end - i {
			dst[i-from+k] = ne.Uint32(b[4*k:])
		}
		i = end
	}
	return true, buf
}
