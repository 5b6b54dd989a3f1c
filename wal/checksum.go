package wal

import "encoding/binary"

// Checksum continues SQLite's WAL checksum (s1, s2) over b and returns the new
// pair. b is read as pairs of 32-bit words, big-endian when bigEndian is set
// (magic 0x377f0683) and little-endian otherwise (magic 0x377f0682); for every
// pair: s1 += w0 + s2; s2 += w1 + s1. The header checksum starts from (0, 0)
// over the header's first 24 bytes; each frame continues from the previous
// frame's (or the header's) checksum over the frame header's first 8 bytes and
// then the page. len(b) must be a multiple of 8.
func Checksum(bigEndian bool, s1, s2 uint32, b []byte) (uint32, uint32) {
	if len(b)%8 != 0 {
		panic("wal: checksum input length is not a multiple of 8")
	}
	if bigEndian {
		for ; len(b) >= 8; b = b[8:] {
			s1 += binary.BigEndian.Uint32(b) + s2
			s2 += binary.BigEndian.Uint32(b[4:8]) + s1
		}
		return s1, s2
	}
	for ; len(b) >= 8; b = b[8:] {
		s1 += binary.LittleEndian.Uint32(b) + s2
		s2 += binary.LittleEndian.Uint32(b[4:8]) + s1
	}
	return s1, s2
}
