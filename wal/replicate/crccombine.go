package replicate

import "hash/crc32"

// crc32Combine returns the CRC-32 (crcTable's polynomial) of A followed by
// B, given crcA = CRC(A), crcB = CRC(B) and the length of B: a record's CRC
// covers its raw header, which is finished last, and then its pages, whose
// CRC is taken as they stream to the segment. It is zlib's crc32_combine
// (1.2.12 and later): appending lenB zero bytes to A multiplies its CRC by
// x^(8·lenB) modulo the polynomial, a product of the powers x^(2^k) of
// crcPowers, one per bit of 8·lenB. It runs once per spooled transaction, so
// it must cost little next to a one-page commit: zlib's older matrix method
// (squaring a 32×32 operator per bit) took tens of microseconds, more than
// the commit itself.
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	return crcMulMod(crcA, xPow8n(uint64(lenB))) ^ crcB
}

// crcPowers[k] is x^(2^k) modulo the (reflected) Castagnoli polynomial.
var crcPowers = func() (t [66]uint32) { // 8·lenB < 2^66
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = crcMulMod(p, p)
	}
	return t
}()

// xPow8n returns x^(8n) modulo the polynomial.
func xPow8n(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crcMulMod(crcPowers[k], p)
		}
	}
	return p
}

// crcMulMod returns a·b modulo the polynomial, both in reflected bit order
// (the highest bit holds x^0).
func crcMulMod(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crc32.Castagnoli
		} else {
			b >>= 1
		}
	}
	return p
}
