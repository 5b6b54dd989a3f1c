package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderSize is the size of the WAL file header.
const HeaderSize = 32

// Magic numbers of the WAL header. The low bit selects the checksum byte order.
const (
	MagicLittleEndian = 0x377f0682 // checksums over little-endian words
	MagicBigEndian    = 0x377f0683 // checksums over big-endian words
)

// Version is the only WAL format version SQLite writes and accepts.
const Version = 3007000

// Page size bounds of SQLite.
const (
	MinPageSize = 512
	MaxPageSize = 65536
)

// Errors returned by ParseHeader, each wrapped with the offending value.
var (
	ErrShortHeader = errors.New("wal: header shorter than 32 bytes")
	ErrMagic       = errors.New("wal: bad magic")
	ErrPageSize    = errors.New("wal: bad page size")
	ErrChecksum    = errors.New("wal: header checksum mismatch")
	ErrVersion     = errors.New("wal: unsupported format version")
)

// Header is the 32-byte WAL file header. All fields are stored big-endian.
type Header struct {
	Magic         uint32 // MagicLittleEndian or MagicBigEndian
	Version       uint32 // always Version
	PageSize      uint32 // database page size, stored verbatim (65536 is 0x00010000)
	CheckpointSeq uint32 // incremented on every WAL restart
	Salt1, Salt2  uint32 // copied into every frame; change on every restart
	Checksum1     uint32 // checksum over the first 24 bytes
	Checksum2     uint32
}

// ParseHeader decodes and validates a WAL header the way SQLite's recovery
// does: the magic, the page size (a power of two in 512..65536), the header
// checksum and the format version. A header that fails any check means SQLite
// treats the whole WAL as empty.
//
// Unlike the database file header, the WAL header stores the page size in 32
// bits, so 65536 is stored as is; SQLite rejects a stored 1 and so does
// ParseHeader.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: got %d", ErrShortHeader, len(b))
	}
	be := binary.BigEndian
	h := Header{
		Magic:         be.Uint32(b[0:]),
		Version:       be.Uint32(b[4:]),
		PageSize:      be.Uint32(b[8:]),
		CheckpointSeq: be.Uint32(b[12:]),
		Salt1:         be.Uint32(b[16:]),
		Salt2:         be.Uint32(b[20:]),
		Checksum1:     be.Uint32(b[24:]),
		Checksum2:     be.Uint32(b[28:]),
	}
	if h.Magic != MagicLittleEndian && h.Magic != MagicBigEndian {
		return Header{}, fmt.Errorf("%w: %#08x", ErrMagic, h.Magic)
	}
	if !ValidPageSize(h.PageSize) {
		return Header{}, fmt.Errorf("%w: %d", ErrPageSize, h.PageSize)
	}
	s1, s2 := Checksum(h.BigEndian(), 0, 0, b[:24])
	if s1 != h.Checksum1 || s2 != h.Checksum2 {
		return Header{}, fmt.Errorf("%w: stored %08x%08x, computed %08x%08x",
			ErrChecksum, h.Checksum1, h.Checksum2, s1, s2)
	}
	if h.Version != Version {
		return Header{}, fmt.Errorf("%w: %d", ErrVersion, h.Version)
	}
	return h, nil
}

// ValidPageSize reports whether n is a page size SQLite accepts in a WAL
// header: a power of two from 512 to 65536.
func ValidPageSize(n uint32) bool {
	return n >= MinPageSize && n <= MaxPageSize && n&(n-1) == 0
}

// BigEndian reports whether the header's checksums are computed over
// big-endian words (magic 0x377f0683).
func (h Header) BigEndian() bool { return h.Magic&1 == 1 }

// AppendBinary appends the 32-byte encoding of h to b. It writes the stored
// Checksum1/Checksum2 as they are; use Seal to compute them.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	be := binary.BigEndian
	for _, v := range [...]uint32{h.Magic, h.Version, h.PageSize, h.CheckpointSeq,
		h.Salt1, h.Salt2, h.Checksum1, h.Checksum2} {
		b = be.AppendUint32(b, v)
	}
	return b, nil
}

// Seal returns h with Checksum1 and Checksum2 set to the checksum of its first
// 24 bytes.
func (h Header) Seal() Header {
	b, _ := h.AppendBinary(make([]byte, 0, HeaderSize)) //walfs:ignore-error AppendBinary never fails; its error is the encoding.BinaryAppender signature's
	h.Checksum1, h.Checksum2 = Checksum(h.BigEndian(), 0, 0, b[:24])
	return h
}
