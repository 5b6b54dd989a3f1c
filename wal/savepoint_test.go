package wal

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The savepoint-512 fixture (testdata/gen.py) is real SQLite 3.40.1 output
// for the quirk behind the pending-rewrite rule (doc.go): after SAVEPOINT,
// a spilling statement and ROLLBACK TO, the committing transaction leaves a
// frame with zeroed salts and checksums and chains the frames after it from
// (0, 0). The live connection treats that transaction and the next one as
// committed; SQLite's recovery drops both.

// withData attaches the page images of txns, read from wal.
func withData(wal []byte, txns []Txn) []gotTxn {
	out := make([]gotTxn, len(txns))
	for i, t := range txns {
		out[i] = gotTxn{Txn: t, data: map[uint32][]byte{}}
		for _, p := range t.Pages {
			out[i].data[p.Pgno] = wal[p.Offset : p.Offset+int64(t.PageSize)]
		}
	}
	return out
}

func applyAll(db []byte, txns []gotTxn) []byte {
	img := append([]byte(nil), db...)
	for _, g := range txns {
		img = apply(img, g)
	}
	return img
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestSavepointQuirk: the transactions captured from the WAL, applied to the
// database file, give byte for byte the database the live connection
// checkpointed; the strict recovery rule alone gives what a reopen reads,
// which lacks the last two transactions.
func TestSavepointQuirk(t *testing.T) {
	exp := loadExpectation(t, "savepoint-512")
	wal := fixture(t, exp.WAL)
	db0 := fixture(t, exp.DB0)
	if exp.LiveSHA256 == exp.RecoverySHA256 || exp.LiveRows == exp.RecoveryRows {
		t.Fatalf("fixture does not show the quirk: regenerate it with an SQLite that has it")
	}
	for _, i := range exp.ZeroedFrames {
		off := FrameOffset(exp.PageSize, int64(i))
		if fh := ParseFrameHeader(wal[off:]); !fh.pendingRewrite() {
			t.Fatalf("frame %d is not a pending-rewrite frame: %+v", i, fh)
		}
	}

	got := parseAll(t, wal)
	if len(got) != len(exp.Txns) {
		t.Fatalf("captured %d txns, SQLite committed %d", len(got), len(exp.Txns))
	}
	for i, g := range got {
		if g.Commit != exp.Txns[i].Commit {
			t.Errorf("txn %d: commit %d, want %d", i, g.Commit, exp.Txns[i].Commit)
		}
	}
	if s := sha(applyAll(db0, got)); s != exp.LiveSHA256 {
		t.Errorf("db + captured txns differs from the live connection's database (sha256 %s, want %s)", s, exp.LiveSHA256)
	}

	strict, _ := refParseStrict(wal)
	if len(strict) >= len(got) {
		t.Fatalf("strict recovery replays %d txns, want fewer than %d", len(strict), len(got))
	}
	if s := sha(applyAll(db0, withData(wal, strict))); s != exp.RecoverySHA256 {
		t.Errorf("db + strictly recovered txns differs from what SQLite's recovery reads (sha256 %s, want %s)", s, exp.RecoverySHA256)
	}

	ref, refIdx := refParse(wal)
	diffTxns(t, "full parse vs reference", stripData(got), ref)
	idx, err := NewCapture(nil).Load(&memFile{wal}, int64(len(wal)))
	if err != nil {
		t.Fatal(err)
	}
	diffIndex(t, "Load", idx, refIdx)
	if last := exp.Txns[len(exp.Txns)-1].Commit; idx.DBSize != last || idx.End != int64(len(wal)) {
		t.Errorf("Load: db size %d end %d, want %d %d", idx.DBSize, idx.End, last, len(wal))
	}
	for _, mode := range replayModes {
		for _, poll := range []bool{false, true} {
			got, idx := replay(t, wal, mode, poll)
			diffTxns(t, "replay "+mode.name, got, ref)
			diffIndex(t, "replay "+mode.name, idx, refIdx)
		}
	}

	// The same WAL with big-endian checksums (reseal keeps the zeroed
	// frames and chains from (0, 0) after them, as SQLite does).
	be := slices.Clone(wal)
	be[3] = 0x83
	resealHeader(be)
	reseal(be, HeaderSize)
	diffTxns(t, "big-endian", stripData(parseAll(t, be)), ref)
	if strictBE, _ := refParseStrict(be); len(strictBE) != len(strict) {
		t.Errorf("big-endian: strict recovery replays %d txns, want %d", len(strictBE), len(strict))
	}
}

// TestSavepointSQLiteReads opens the database built from the captured
// transactions with the sqlite3 CLI: it must hold the live connection's rows
// (count and sum), where the strict recovery rule loses some.
func TestSavepointSQLiteReads(t *testing.T) {
	cli, err := exec.LookPath("sqlite3")
	if err != nil {
		skipOrFail(t, "sqlite3 CLI not installed (apt-get install sqlite3)")
	}
	exp := loadExpectation(t, "savepoint-512")
	wal := fixture(t, exp.WAL)
	db0 := fixture(t, exp.DB0)
	strict, _ := refParseStrict(wal)
	for _, c := range []struct {
		name string
		txns []gotTxn
		rows int
		sum  int64
	}{
		{"captured", parseAll(t, wal), exp.LiveRows, exp.LiveSum},
		{"strict recovery", withData(wal, strict), exp.RecoveryRows, exp.RecoverySum},
	} {
		path := filepath.Join(t.TempDir(), "applied.db")
		if err := os.WriteFile(path, applyAll(db0, c.txns), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(cli, path, "PRAGMA integrity_check; SELECT count(*) || ' ' || sum(k) FROM t;").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: sqlite3: %v: %s", c.name, err, out)
		}
		want := "ok\n" + strconv.Itoa(c.rows) + " " + strconv.FormatInt(c.sum, 10)
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: sqlite3 says %q, want %q", c.name, got, want)
		}
	}
}

// TestSavepointTraceReplay replays the exact writes SQLite made to the -wal
// file in that workload (zeroed headers written, then the checksum rewrite
// of the commit from the frame after the zeroed one), split every way, through
// Wrote and Poll: every committed transaction is emitted, and the replica
// equals the live connection's database.
func TestSavepointTraceReplay(t *testing.T) {
	exp := loadExpectation(t, "savepoint-512")
	ops := loadTrace(t, exp.Trace)
	db0 := fixture(t, exp.DB0)
	for _, mode := range replayModes {
		for _, poll := range []bool{false, true} {
			what := mode.name
			if poll {
				what += "/poll"
			}
			t.Run(what, func(t *testing.T) {
				sink := &recSink{}
				c := NewCapture(sink)
				f := &memFile{}
				rnd := rand.New(rand.NewPCG(3, 4))
				for i, op := range ops {
					var err error
					switch op.op {
					case 'W':
						parts := []int{len(op.data)}
						if mode.split != nil {
							parts = mode.split(rnd, op.off, len(op.data))
						}
						off, data := op.off, op.data
						for _, k := range parts {
							f.WriteAt(data[:k], off)
							if poll {
								err = c.Poll(f, f.Size())
							} else {
								err = c.Wrote(f, off, k, f.Size())
							}
							if err != nil {
								break
							}
							_, want := refParse(f.b)
							diffIndex(t, "after a write", c.Committed(), want)
							off += int64(k)
							data = data[k:]
						}
					case 'T':
						f.Truncate(op.off)
						if poll {
							err = c.Poll(f, f.Size())
						} else {
							c.Truncated(op.off)
						}
					default:
						t.Fatalf("op %d: unexpected op %q", i, op.op)
					}
					if err != nil {
						t.Fatalf("op %d (%c at %d): %v", i, op.op, op.off, err)
					}
				}
				if len(sink.txns) != len(exp.Txns) {
					t.Fatalf("emitted %d txns, SQLite committed %d", len(sink.txns), len(exp.Txns))
				}
				if s := sha(applyAll(db0, sink.txns)); s != exp.LiveSHA256 {
					t.Errorf("replica differs from the live connection's database")
				}
			})
		}
	}
}
