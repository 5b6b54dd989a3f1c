package fusefs

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/walfs/walfs/wal"
)

func TestParseLocks(t *testing.T) {
	table := `1: POSIX  ADVISORY  WRITE 25507 00:28:9986073 1073741824 1073741825
2: POSIX  ADVISORY  READ 25507 00:28:9986073 1073741826 1073742335
3: -> POSIX  ADVISORY  WRITE 25508 00:28:9986073 1073741824 1073741824
4: OFDLCK ADVISORY  WRITE -1 00:28:77 120 120
5: FLOCK  ADVISORY  WRITE 25380 fe:00:9986053 0 EOF
garbage
`
	got := parseLocks([]byte(table))
	want := []heldLock{
		{write: true, pid: 25507, dev: "00:28", ino: 9986073, start: 1073741824, end: 1073741825},
		{write: false, pid: 25507, dev: "00:28", ino: 9986073, start: 1073741826, end: 1073742335},
		{write: true, pid: -1, dev: "00:28", ino: 77, start: 120, end: 120},
		{write: true, pid: 25380, dev: "fe:00", ino: 9986053, start: 0, end: math.MaxUint64},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A reader's SHARED lock is not a writer; RESERVED is.
	if _, ok := writeLockOn(got[1:2], "00:28", 9986073, pendingByte, pendingByte+1+sharedSize); ok {
		t.Error("a read lock counted as a writer")
	}
	if _, ok := writeLockOn(got, "00:28", 9986073, pendingByte, pendingByte+1+sharedSize); !ok {
		t.Error("RESERVED/PENDING write lock not found")
	}
	if _, ok := writeLockOn(got, "00:29", 9986073, pendingByte, pendingByte+1+sharedSize); ok {
		t.Error("a lock on another device matched")
	}
	if _, ok := writeLockOn(got, "00:28", 77, shmWriteLock, shmRecoverEnd); !ok {
		t.Error("WAL_WRITE lock on the -shm not found")
	}
}

func FuzzParseLocks(f *testing.F) {
	f.Add([]byte("1: POSIX  ADVISORY  WRITE 1 00:28:9 1 EOF\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseLocks(b) })
}

func TestLockDev(t *testing.T) {
	for in, want := range map[string]string{"0:40": "00:28", "254:0": "fe:00", "8:1": "08:01"} {
		if got, err := lockDev(in); err != nil || got != want {
			t.Errorf("lockDev(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := lockDev("x"); err == nil {
		t.Error("lockDev(x) accepted")
	}
}

func TestWALCheckpointed(t *testing.T) {
	dir := t.TempDir()
	ne := binary.NativeEndian
	nativeBE := ne.Uint16([]byte{0, 1}) == 1
	// shm writes a wal-index header as SQLite does (version, initialised,
	// its checksum over bytes 0..40 in native word order), twice.
	shm := func(mx1, mx2, backfill uint32, damage bool) string {
		var b [136]byte
		for i, mx := range []uint32{mx1, mx2} {
			h := b[48*i : 48*i+48]
			ne.PutUint32(h[0:], 3007000)
			h[12] = 1
			ne.PutUint16(h[14:], 4096)
			ne.PutUint32(h[16:], mx)
			s1, s2 := wal.Checksum(nativeBE, 0, 0, h[:40])
			ne.PutUint32(h[40:], s1)
			ne.PutUint32(h[44:], s2)
			if damage {
				h[40]++
			}
		}
		ne.PutUint32(b[96:], backfill)
		p := filepath.Join(dir, "x-shm")
		if err := os.WriteFile(p, b[:], 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name               string
		mx1, mx2, backfill uint32
		damage             bool
		want               bool
	}{
		{"all copied", 10, 10, 10, false, true},
		{"empty wal", 0, 0, 0, false, true},
		{"frames not copied", 10, 10, 4, false, false},
		{"header copies differ", 10, 12, 10, false, false},
		{"header checksum wrong", 10, 10, 10, true, false},
	} {
		if got := walCheckpointed(shm(tc.mx1, tc.mx2, tc.backfill, tc.damage)); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if walCheckpointed(filepath.Join(dir, "missing-shm")) {
		t.Error("a missing -shm counted as checkpointed")
	}
}
