package wal

import (
	"encoding/binary"
	"testing"
)

func TestParseDBHeader(t *testing.T) {
	hdr := func(pageSize uint16, rw byte, counter, valid, count uint32) []byte {
		b := make([]byte, DBHeaderSize)
		copy(b, dbMagic)
		binary.BigEndian.PutUint16(b[16:], pageSize)
		b[18], b[19] = rw, rw
		binary.BigEndian.PutUint32(b[24:], counter)
		binary.BigEndian.PutUint32(b[28:], count)
		binary.BigEndian.PutUint32(b[92:], valid)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want DBHeader
		ok   bool
	}{
		{"rollback, count valid", hdr(4096, 1, 7, 7, 12), DBHeader{PageSize: 4096, PageCount: 12}, true},
		{"wal mode", hdr(512, 2, 7, 7, 3), DBHeader{PageSize: 512, PageCount: 3, WALMode: true}, true},
		{"64 KiB pages are written as 1", hdr(1, 2, 1, 1, 2), DBHeader{PageSize: 65536, PageCount: 2, WALMode: true}, true},
		{"count not marked valid", hdr(4096, 1, 8, 7, 12), DBHeader{PageSize: 4096}, true},
		{"only 20 bytes", hdr(4096, 2, 7, 7, 12)[:20], DBHeader{PageSize: 4096, WALMode: true}, true},
		{"free pages", withFree(hdr(4096, 1, 7, 7, 12), 5), DBHeader{PageSize: 4096, PageCount: 12, FreePages: 5}, true},
		{"bad page size", hdr(1000, 1, 7, 7, 12), DBHeader{}, false},
		{"not sqlite", make([]byte, DBHeaderSize), DBHeader{}, false},
		{"short", []byte("SQLite format 3"), DBHeader{}, false},
	} {
		got, ok := ParseDBHeader(tc.b)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func withFree(b []byte, n uint32) []byte {
	binary.BigEndian.PutUint32(b[36:], n)
	return b
}
