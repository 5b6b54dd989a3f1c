package wal

import (
	"math/rand/v2"
	"testing"
)

// The lanes give the serial checksum for every length, start and byte
// order, pages included.
func TestChecksumLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 8, 16, 24, 504, 512, 520, 1016, 1024, 4096, 4104, 8192, 65536, 65544}
	for range 200 {
		lengths = append(lengths, 8*rng.IntN(2000))
	}
	for _, n := range lengths {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if n > 0 && rng.IntN(4) == 0 {
			for i := range b {
				b[i] = 0xff // carries everywhere
			}
		}
		for _, be := range []bool{false, true} {
			s1, s2 := rng.Uint32(), rng.Uint32()
			w1, w2 := checksumSerial(be, s1, s2, b)
			g1, g2 := Checksum(be, s1, s2, b)
			if g1 != w1 || g2 != w2 {
				t.Fatalf("%d bytes, big-endian %v, from (%#x, %#x): lanes give (%#x, %#x), serial (%#x, %#x)", n, be, s1, s2, g1, g2, w1, w2)
			}
		}
	}
}

func BenchmarkChecksumPage(b *testing.B) {
	page := make([]byte, 4096)
	for i := range page {
		page[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(page)))
	b.Run("lanes", func(b *testing.B) {
		for b.Loop() {
			Checksum(false, 1, 2, page)
		}
	})
	b.Run("lanes-be", func(b *testing.B) {
		for b.Loop() {
			Checksum(true, 1, 2, page)
		}
	})
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			checksumSerial(false, 1, 2, page)
		}
	})
}
