package wal

import (
	"encoding/binary"
	"math/bits"
)

// Checksum continues SQLite's WAL checksum (s1, s2) over b and returns the new
// pair. b is read as pairs of 32-bit words, big-endian when bigEndian is set
// (magic 0x377f0683) and little-endian otherwise (magic 0x377f0682); for every
// pair: s1 += w0 + s2; s2 += w1 + s1. The header checksum starts from (0, 0)
// over the header's first 24 bytes; each frame continues from the previous
// frame's (or the header's) checksum over the frame header's first 8 bytes and
// then the page. len(b) must be a multiple of 8.
//
// Each step depends on the one before, so done in order a page costs one
// chain of 512 dependent steps. But a step is linear (mod 2^32):
// (s1, s2) becomes M·(s1, s2) + (w0, w0+w1) with M = [1 1; 1 2]. So the
// input is cut into four lanes summed from (0, 0) side by side, and the
// lanes are joined as s = M^L·s + lane, L the steps of a lane: the same
// result (checksumSerial, TestChecksumLanes) in a little over half the time.
func Checksum(bigEndian bool, s1, s2 uint32, b []byte) (uint32, uint32) {
	if len(b)%8 != 0 {
		panic("wal: checksum input length is not a multiple of 8")
	}
	steps := len(b) / 8
	if steps < 4*lanesMin {
		return checksumSerial(bigEndian, s1, s2, b)
	}
	l := steps / 4
	n := 8 * l
	m := stepPower(l)
	for _, lane := range lanes(bigEndian, b[:n], b[n:2*n], b[2*n:3*n], b[3*n:4*n]) {
		s1, s2 = m[0]*s1+m[1]*s2+lane[0], m[2]*s1+m[3]*s2+lane[1]
	}
	return checksumSerial(bigEndian, s1, s2, b[4*n:])
}

// lanesMin is the fewest steps per lane worth the join.
const lanesMin = 16

// checksumSerial is Checksum one step after the other.
func checksumSerial(bigEndian bool, s1, s2 uint32, b []byte) (uint32, uint32) {
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

// lanes sums four equal lanes from (0, 0), interleaved so that their
// chains run side by side. Words are loaded little-endian eight bytes at a
// time; for big-endian words each half is byte-swapped in place
// (bits.ReverseBytes64 swaps the halves too, which the rotation undoes).
func lanes(bigEndian bool, p0, p1, p2, p3 []byte) [4][2]uint32 {
	var a0, b0, a1, b1, a2, b2, a3, b3 uint32
	n := len(p0)
	p0, p1, p2, p3 = p0[:n], p1[:n], p2[:n], p3[:n]
	for i := 0; i+8 <= n; i += 8 {
		x0 := binary.LittleEndian.Uint64(p0[i : i+8])
		x1 := binary.LittleEndian.Uint64(p1[i : i+8])
		x2 := binary.LittleEndian.Uint64(p2[i : i+8])
		x3 := binary.LittleEndian.Uint64(p3[i : i+8])
		if bigEndian {
			x0 = bits.RotateLeft64(bits.ReverseBytes64(x0), 32)
			x1 = bits.RotateLeft64(bits.ReverseBytes64(x1), 32)
			x2 = bits.RotateLeft64(bits.ReverseBytes64(x2), 32)
			x3 = bits.RotateLeft64(bits.ReverseBytes64(x3), 32)
		}
		a0 += uint32(x0) + b0
		a1 += uint32(x1) + b1
		a2 += uint32(x2) + b2
		a3 += uint32(x3) + b3
		b0 += uint32(x0>>32) + a0
		b1 += uint32(x1>>32) + a1
		b2 += uint32(x2>>32) + a2
		b3 += uint32(x3>>32) + a3
	}
	return [4][2]uint32{{a0, b0}, {a1, b1}, {a2, b2}, {a3, b3}}
}

// stepMatrix is M^1, row by row: one step's effect on (s1, s2).
var stepMatrix = [4]uint32{1, 1, 1, 2}

// pagePower is M^128: the lanes of a 4096-byte page.
var pagePower = matPow(128)

// stepPower returns M^l.
func stepPower(l int) [4]uint32 {
	if l == 128 {
		return pagePower
	}
	return matPow(l)
}

func matPow(l int) [4]uint32 {
	r, m := [4]uint32{1, 0, 0, 1}, stepMatrix
	for ; l > 0; l >>= 1 {
		if l&1 != 0 {
			r = matMul(r, m)
		}
		m = matMul(m, m)
	}
	return r
}

func matMul(a, b [4]uint32) [4]uint32 {
	return [4]uint32{
		a[0]*b[0] + a[1]*b[2], a[0]*b[1] + a[1]*b[3],
		a[2]*b[0] + a[3]*b[2], a[2]*b[1] + a[3]*b[3],
	}
}
