package wal

import "encoding/binary"

// FrameHeaderSize is the size of the header in front of every page in the WAL.
const FrameHeaderSize = 24

// FrameHeader is the 24-byte header of one WAL frame, stored big-endian.
type FrameHeader struct {
	Pgno         uint32 // database page number; 0 makes the frame invalid
	Commit       uint32 // database size in pages after the commit; 0 unless commit frame
	Salt1, Salt2 uint32 // must equal the WAL header's
	Checksum1    uint32 // cumulative checksum through this frame
	Checksum2    uint32
}

// ParseFrameHeader decodes a frame header. It does not validate anything: a
// frame's validity depends on the WAL header and on every frame before it
// (see Capture). b must hold at least FrameHeaderSize bytes.
func ParseFrameHeader(b []byte) FrameHeader {
	_ = b[FrameHeaderSize-1]
	be := binary.BigEndian
	return FrameHeader{
		Pgno:      be.Uint32(b[0:]),
		Commit:    be.Uint32(b[4:]),
		Salt1:     be.Uint32(b[8:]),
		Salt2:     be.Uint32(b[12:]),
		Checksum1: be.Uint32(b[16:]),
		Checksum2: be.Uint32(b[20:]),
	}
}

// AppendBinary appends the 24-byte encoding of h to b.
func (h FrameHeader) AppendBinary(b []byte) ([]byte, error) {
	be := binary.BigEndian
	for _, v := range [...]uint32{h.Pgno, h.Commit, h.Salt1, h.Salt2, h.Checksum1, h.Checksum2} {
		b = be.AppendUint32(b, v)
	}
	return b, nil
}

// FrameOffset returns the file offset of frame i (0-based).
func FrameOffset(pageSize uint32, i int64) int64 {
	return HeaderSize + i*(FrameHeaderSize+int64(pageSize))
}

// pendingRewrite reports whether h is the header of a pending-rewrite frame:
// salts and checksums all zero, a page number and no commit. SQLite writes
// such a header for a frame appended while it owes the open transaction a
// checksum rewrite (wal.c walEncodeFrame with iReCksum set); see doc.go for
// when one is never rewritten.
func (h FrameHeader) pendingRewrite() bool {
	return h.Salt1 == 0 && h.Salt2 == 0 && h.Checksum1 == 0 && h.Checksum2 == 0 &&
		h.Pgno != 0 && h.Commit == 0
}
