package replicate

import (
	"hash/crc32"
	"math/rand"
	"testing"
)

func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range [][2]int{{0, 0}, {0, 5}, {5, 0}, {1, 1}, {36, 4100}, {36, 1 << 20}, {7, 65536 + 4}, {4096, 3 << 22}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		rng.Read(a)
		rng.Read(b)
		want := crc32.Checksum(append(append([]byte(nil), a...), b...), crcTable)
		got := crc32Combine(crc32.Checksum(a, crcTable), crc32.Checksum(b, crcTable), int64(len(b)))
		if got != want {
			t.Errorf("combine of %d and %d bytes = %08x, want %08x", n[0], n[1], got, want)
		}
	}
}

func BenchmarkCRC32Combine(b *testing.B) {
	for i := 0; i < b.N; i++ {
		crc32Combine(uint32(i), 0x1234, 4096+24)
	}
}
