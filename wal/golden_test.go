package wal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGolden checks the full-file parse of WALs written by real SQLite against
// what testdata/gen.py derived from the workload and from SQLite's own reads.
func TestGolden(t *testing.T) {
	for _, name := range goldens {
		t.Run(name, func(t *testing.T) {
			exp := loadExpectation(t, name)
			wal := fixture(t, exp.WAL)
			got := parseAll(t, wal)

			if len(got) != len(exp.Txns) {
				t.Fatalf("got %d txns, want %d", len(got), len(exp.Txns))
			}
			img := fixture(t, exp.DB)
			for i, g := range got {
				want := exp.Txns[i]
				if g.PageSize != exp.PageSize || g.Commit != want.Commit {
					t.Errorf("txn %d: page size %d commit %d, want %d %d", i, g.PageSize, g.Commit, exp.PageSize, want.Commit)
				}
				if !hasAll(g.Txn, want.Changed) {
					t.Errorf("txn %d: pages %v lack some of the changed pages %v", i, g.Pages, want.Changed)
				}
				img = apply(img, g)
			}
			if sum := sha256.Sum256(img); hex.EncodeToString(sum[:]) != exp.FinalSHA256 {
				t.Errorf("db + emitted txns differs from what SQLite reads (sha256 %x, want %s)", sum, exp.FinalSHA256)
			}

			refTxns, refIdx := refParse(wal)
			diffTxns(t, "full parse vs reference", stripData(got), refTxns)
			idx, err := NewCapture(nil).Load(&memFile{wal}, int64(len(wal)))
			if err != nil {
				t.Fatal(err)
			}
			diffIndex(t, "Load", idx, refIdx)
			if idx.DBSize != exp.Txns[len(exp.Txns)-1].Commit {
				t.Errorf("Load: db size %d, want %d", idx.DBSize, exp.Txns[len(exp.Txns)-1].Commit)
			}
		})
	}
}

// TestGoldenSQLiteReads is the differential check against SQLite itself: the
// database file plus the emitted transactions, opened by the sqlite3 CLI as a
// plain database, must pass integrity_check with the row count SQLite saw.
func TestGoldenSQLiteReads(t *testing.T) {
	cli, err := exec.LookPath("sqlite3")
	if err != nil {
		skipOrFail(t, "sqlite3 CLI not installed (apt-get install sqlite3)")
	}
	for _, name := range goldens {
		t.Run(name, func(t *testing.T) {
			exp := loadExpectation(t, name)
			img := fixture(t, exp.DB)
			for _, g := range parseAll(t, fixture(t, exp.WAL)) {
				img = apply(img, g)
			}
			path := filepath.Join(t.TempDir(), "applied.db")
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(cli, path, "PRAGMA integrity_check; SELECT count(*) FROM t;").CombinedOutput()
			if err != nil {
				t.Fatalf("sqlite3: %v: %s", err, out)
			}
			lines := strings.Fields(string(out))
			if len(lines) != 2 || lines[0] != "ok" || lines[1] != strconv.Itoa(exp.Rows) {
				t.Errorf("sqlite3 says %q, want ok and %d rows", out, exp.Rows)
			}
		})
	}
}

// corruption derives a damaged WAL from a golden one.
type corruption struct {
	name string
	// damage changes the WAL and returns the offset from which nothing may
	// be replayed (transactions ending at or before it survive).
	damage func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64)
}

var corruptions = []corruption{
	{"bad checksum in a middle frame", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)/2]
		wal[tx.Offset+FrameHeaderSize+100] ^= 0x40 // first frame of a middle txn
		return wal, tx.Offset
	}},
	{"bad checksum in a commit frame", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)/2]
		ps := int64(tx.PageSize)
		wal[tx.End-1] ^= 1
		return wal, tx.End - ps - FrameHeaderSize
	}},
	{"bad checksum field", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)-1]
		wal[tx.Offset+20] ^= 1
		return wal, tx.Offset
	}},
	{"bad salt in a frame", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)/2]
		binary.BigEndian.PutUint32(wal[tx.Offset+8:], tx.Salt1+1) // salts are not checksummed
		return wal, tx.Offset
	}},
	{"zero page number", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)/2]
		binary.BigEndian.PutUint32(wal[tx.Offset:], 0)
		reseal(wal, tx.Offset) // only the page-number rule rejects it
		return wal, tx.Offset
	}},
	{"torn commit frame", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)-1]
		return wal[:tx.End-7], tx.End - int64(tx.PageSize) - FrameHeaderSize
	}},
	{"torn frame header", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		tx := txns[len(txns)-1]
		return wal[:tx.End-int64(tx.PageSize)-10], tx.End - int64(tx.PageSize) - FrameHeaderSize
	}},
	{"rolled-back tail", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		last := txns[len(txns)-1]
		wal = appendFrames(wal[:last.End], last.PageSize, []uint32{2, 3, 2}, 0)
		return wal, last.End
	}},
	{"rolled-back tail then a commit", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		last := txns[len(txns)-1]
		wal = appendFrames(wal[:last.End], last.PageSize, []uint32{2, 3, 2}, last.Commit)
		return wal, int64(len(wal)) // the appended txn is replayed too
	}},
	{"bad header checksum", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		wal[25] ^= 1
		return wal, 0
	}},
	{"new header salt", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		binary.BigEndian.PutUint32(wal[16:], binary.BigEndian.Uint32(wal[16:])+1)
		resealHeader(wal)
		return wal, 0
	}},
	{"bad version", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		binary.BigEndian.PutUint32(wal[4:], 3007001)
		resealHeader(wal)
		return wal, 0
	}},
	{"bad magic", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		binary.BigEndian.PutUint32(wal[0:], 0x377f0684)
		resealHeader(wal)
		return wal, 0
	}},
	{"torn header", func(t *testing.T, wal []byte, txns []Txn) ([]byte, int64) {
		return wal[:HeaderSize-1], 0
	}},
}

// resealHeader recomputes the header checksum.
func resealHeader(wal []byte) {
	be := wal[3]&1 == 1
	s1, s2 := Checksum(be, 0, 0, wal[:24])
	binary.BigEndian.PutUint32(wal[24:], s1)
	binary.BigEndian.PutUint32(wal[28:], s2)
}

// reseal recomputes the checksums of every whole frame from offset from on,
// from the checksum stored in the frame before (or the header), as SQLite's
// walRewriteChecksums does. Pending-rewrite frames (zero salts, a page
// number, no commit) keep their zeroed checksums, so the chain goes on from
// (0, 0) after them.
func reseal(wal []byte, from int64) {
	be := wal[3]&1 == 1
	fs := FrameHeaderSize + int64(binary.BigEndian.Uint32(wal[8:]))
	var s1, s2 uint32
	if from == HeaderSize {
		s1, s2 = binary.BigEndian.Uint32(wal[24:]), binary.BigEndian.Uint32(wal[28:])
	} else {
		s1, s2 = binary.BigEndian.Uint32(wal[from-fs+16:]), binary.BigEndian.Uint32(wal[from-fs+20:])
	}
	for off := from; off+fs <= int64(len(wal)); off += fs {
		if fh := ParseFrameHeader(wal[off:]); fh.Salt1 == 0 && fh.Salt2 == 0 && fh.Pgno != 0 && fh.Commit == 0 {
			clear(wal[off+16 : off+24])
			s1, s2 = 0, 0
			continue
		}
		s1, s2 = Checksum(be, s1, s2, wal[off:off+8])
		s1, s2 = Checksum(be, s1, s2, wal[off+FrameHeaderSize:off+fs])
		binary.BigEndian.PutUint32(wal[off+16:], s1)
		binary.BigEndian.PutUint32(wal[off+20:], s2)
	}
}

// appendFrames appends valid frames continuing the chain; the last one
// carries commit.
func appendFrames(wal []byte, ps uint32, pgnos []uint32, commit uint32) []byte {
	wal = append([]byte(nil), wal...)
	from := int64(len(wal))
	for i, pgno := range pgnos {
		var h [FrameHeaderSize]byte
		binary.BigEndian.PutUint32(h[0:], pgno)
		if i == len(pgnos)-1 {
			binary.BigEndian.PutUint32(h[4:], commit)
		}
		copy(h[8:16], wal[16:24])
		wal = append(wal, h[:]...)
		page := make([]byte, ps)
		for j := range page {
			page[j] = byte(i + j)
		}
		wal = append(wal, page...)
	}
	reseal(wal, from)
	return wal
}

// TestCorrupt damages golden WALs and checks that every path (whole-file
// parse, Load, replay through Wrote, replay through Poll) replays exactly the
// transactions before the damage, as SQLite's recovery would.
func TestCorrupt(t *testing.T) {
	for _, name := range []string{"golden-512", "golden-4096"} {
		exp := loadExpectation(t, name)
		orig := fixture(t, exp.WAL)
		good, _ := refParse(orig)
		for _, c := range corruptions {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				wal, cut := c.damage(t, append([]byte(nil), orig...), good)
				var want []Txn
				for _, tx := range good {
					if tx.End <= cut {
						want = append(want, tx)
					}
				}
				ref, refIdx := refParse(wal)
				if c.name == "rolled-back tail then a commit" {
					if len(ref) != len(good)+1 {
						t.Fatalf("reference parse found %d txns, want %d", len(ref), len(good)+1)
					}
					want = ref
				}
				diffTxns(t, "reference parse", ref, want) // the damage does what it says
				diffTxns(t, "full parse", stripData(parseAll(t, wal)), want)
				idx, err := NewCapture(nil).Load(&memFile{wal}, int64(len(wal)))
				if err != nil {
					t.Fatal(err)
				}
				diffIndex(t, "Load", idx, refIdx)
				for _, mode := range []replayMode{replaySQLite, replayRandom} {
					got, idx := replay(t, wal, mode, false)
					diffTxns(t, "replay "+mode.name, got, want)
					diffIndex(t, "replay "+mode.name, idx, refIdx)
					got, idx = replay(t, wal, mode, true)
					diffTxns(t, "poll replay "+mode.name, got, want)
					diffIndex(t, "poll replay "+mode.name, idx, refIdx)
				}
			})
		}
	}
}
