package wal

import (
	"encoding/binary"
	"errors"
	"testing"
)

func sealedHeader(magic, version, ps uint32) []byte {
	b, _ := Header{Magic: magic, Version: version, PageSize: ps, CheckpointSeq: 3,
		Salt1: 0xdeadbeef, Salt2: 0x01020304}.Seal().AppendBinary(nil)
	return b
}

func TestParseHeader(t *testing.T) {
	badSum := sealedHeader(MagicLittleEndian, Version, 4096)
	badSum[31] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"little-endian 4096", sealedHeader(MagicLittleEndian, Version, 4096), nil},
		{"big-endian 512", sealedHeader(MagicBigEndian, Version, 512), nil},
		{"65536 stored verbatim", sealedHeader(MagicLittleEndian, Version, 65536), nil},
		{"short", sealedHeader(MagicLittleEndian, Version, 4096)[:31], ErrShortHeader},
		{"bad magic", sealedHeader(0x377f0684, Version, 4096), ErrMagic},
		{"page size 1 (db-header style 65536)", sealedHeader(MagicLittleEndian, Version, 1), ErrPageSize},
		{"page size 256", sealedHeader(MagicLittleEndian, Version, 256), ErrPageSize},
		{"page size 3000", sealedHeader(MagicLittleEndian, Version, 3000), ErrPageSize},
		{"page size 131072", sealedHeader(MagicLittleEndian, Version, 131072), ErrPageSize},
		{"page size 0", sealedHeader(MagicLittleEndian, Version, 0), ErrPageSize},
		{"bad checksum", badSum, ErrChecksum},
		{"bad version", sealedHeader(MagicLittleEndian, 3007001, 4096), ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err == nil {
				if h.PageSize != binary.BigEndian.Uint32(tc.b[8:]) || h.CheckpointSeq != 3 || h.Salt1 != 0xdeadbeef {
					t.Fatalf("decoded %+v", h)
				}
				if got, _ := h.AppendBinary(nil); string(got) != string(tc.b) {
					t.Fatalf("round trip differs")
				}
			}
		})
	}
}

// TestGoldenHeaders: real SQLite headers parse, with the byte order and page
// size of their fixture.
func TestGoldenHeaders(t *testing.T) {
	for _, name := range goldens {
		exp := loadExpectation(t, name)
		h, err := ParseHeader(fixture(t, exp.WAL))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.PageSize != exp.PageSize || h.BigEndian() || h.Magic != MagicLittleEndian {
			t.Fatalf("%s: %+v", name, h)
		}
	}
}

func TestChecksum(t *testing.T) {
	b := []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}
	// s1 = 1, s2 = 2+1 = 3; s1 = 1+3+3 = 7, s2 = 3+4+7 = 14.
	if s1, s2 := Checksum(false, 0, 0, b); s1 != 7 || s2 != 14 {
		t.Fatalf("little-endian: %d %d", s1, s2)
	}
	if s1, s2 := Checksum(true, 0, 0, b); s1 != 0x01000000+0x02000000+0x01000000+0x03000000 ||
		s2 != 0x02000000+0x01000000+0x04000000+s1 {
		t.Fatalf("big-endian: %#x %#x", s1, s2)
	}
	// Continuing equals computing in one go, and matches the plain version.
	long := make([]byte, 4096)
	for i := range long {
		long[i] = byte(i * 7)
	}
	for _, be := range []bool{false, true} {
		a1, a2 := Checksum(be, 5, 6, long)
		b1, b2 := Checksum(be, 5, 6, long[:1024])
		b1, b2 = Checksum(be, b1, b2, long[1024:])
		ref := refSum(be, [2]uint32{5, 6}, long)
		if a1 != b1 || a2 != b2 || a1 != ref[0] || a2 != ref[1] {
			t.Fatalf("be=%v: %x %x / %x %x / %x", be, a1, a2, b1, b2, ref)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a length that is not a multiple of 8")
		}
	}()
	Checksum(false, 0, 0, make([]byte, 12))
}

func TestFrameOffset(t *testing.T) {
	for _, tc := range []struct {
		ps   uint32
		i    int64
		want int64
	}{
		{4096, 0, 32},
		{4096, 1, 32 + 4120},
		{512, 3, 32 + 3*536},
		{65536, 100000, 32 + 100000*65560}, // past 4 GiB
	} {
		if got := FrameOffset(tc.ps, tc.i); got != tc.want {
			t.Errorf("FrameOffset(%d, %d) = %d, want %d", tc.ps, tc.i, got, tc.want)
		}
	}
}

func TestParseFrameHeader(t *testing.T) {
	want := FrameHeader{Pgno: 7, Commit: 9, Salt1: 1, Salt2: 2, Checksum1: 3, Checksum2: 4}
	b, _ := want.AppendBinary(nil)
	if len(b) != FrameHeaderSize {
		t.Fatalf("encoded %d bytes", len(b))
	}
	if got := ParseFrameHeader(b); got != want {
		t.Fatalf("got %+v", got)
	}
}
