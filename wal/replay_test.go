package wal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// osFile is a real temporary file that knows its size.
type osFile struct {
	*os.File
	size int64
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.size = max(f.size, off+int64(n))
	return n, err
}

func (f *osFile) Size() int64 { return f.size }

func tempWAL(t testing.TB) *osFile {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &osFile{File: f}
}

// replayMode says how each write() SQLite makes is split further, as the
// kernel or FUSE may do.
type replayMode struct {
	name  string
	split func(rnd *rand.Rand, off int64, n int) []int
}

var (
	replaySQLite = replayMode{"sqlite", nil}
	replay4K     = replayMode{"4k", func(_ *rand.Rand, off int64, n int) []int {
		var parts []int
		for n > 0 {
			k := min(n, int(4096-off%4096))
			parts = append(parts, k)
			off += int64(k)
			n -= k
		}
		return parts
	}}
	replayRandom = replayMode{"random", func(rnd *rand.Rand, off int64, n int) []int {
		var parts []int
		for n > 0 {
			k := min(n, 1+rnd.IntN(max(1, n/2+1)))
			parts = append(parts, k)
			n -= k
		}
		return parts
	}}
	replayModes = []replayMode{replaySQLite, replay4K, replayRandom}
)

// replay writes wal into a temporary file the way SQLite writes one (header,
// then per frame a 24-byte header write and a page write; a torn tail as one
// short write), split further by mode, calling Wrote (or Poll) after every
// write. It returns the emitted transactions and the final committed index,
// and checks that every page the sink read is the page in wal.
func replay(t testing.TB, wal []byte, mode replayMode, poll bool) ([]Txn, *Index) {
	t.Helper()
	f := tempWAL(t)
	sink := &recSink{}
	c := NewCapture(sink)
	rnd := rand.New(rand.NewPCG(uint64(len(wal)), 7))
	write := func(off int64, b []byte) {
		parts := []int{len(b)}
		if mode.split != nil {
			parts = mode.split(rnd, off, len(b))
		}
		for _, n := range parts {
			if _, err := f.WriteAt(b[:n], off); err != nil {
				t.Fatal(err)
			}
			var err error
			if poll {
				err = c.Poll(f, f.Size())
			} else {
				err = c.Wrote(f, off, n, f.Size())
			}
			if err != nil {
				t.Fatalf("%s replay at %d+%d: %v", mode.name, off, n, err)
			}
			off += int64(n)
			b = b[n:]
		}
	}
	if len(wal) < HeaderSize {
		write(0, wal)
	} else {
		write(0, wal[:HeaderSize])
		fs := int64(FrameHeaderSize + binary.BigEndian.Uint32(wal[8:]))
		if fs > FrameHeaderSize+MaxPageSize || fs < FrameHeaderSize+MinPageSize {
			fs = FrameHeaderSize + 512
		}
		for off := int64(HeaderSize); off < int64(len(wal)); off += fs {
			end := min(off+fs, int64(len(wal)))
			write(off, wal[off:min(off+FrameHeaderSize, end)])
			if off+FrameHeaderSize < end {
				write(off+FrameHeaderSize, wal[off+FrameHeaderSize:end])
			}
		}
	}
	for _, g := range sink.txns {
		for _, p := range g.Pages {
			if !bytes.Equal(g.data[p.Pgno], wal[p.Offset:p.Offset+int64(g.PageSize)]) {
				t.Errorf("%s replay: txn at %d: page %d data differs from the file", mode.name, g.Offset, p.Pgno)
			}
		}
	}
	return stripData(sink.txns), c.Committed()
}

// TestReplayGolden replays real SQLite WALs write by write and checks that
// the incremental captures emit exactly what the whole-file parse does.
func TestReplayGolden(t *testing.T) {
	for _, name := range goldens {
		exp := loadExpectation(t, name)
		wal := fixture(t, exp.WAL)
		want := stripData(parseAll(t, wal))
		_, wantIdx := refParse(wal)
		if len(want) != len(exp.Txns) {
			t.Fatalf("%s: full parse found %d txns, want %d", name, len(want), len(exp.Txns))
		}
		for _, mode := range replayModes {
			for _, poll := range []bool{false, true} {
				what := name + "/" + mode.name
				if poll {
					what += "/poll"
				}
				t.Run(what, func(t *testing.T) {
					got, idx := replay(t, wal, mode, poll)
					diffTxns(t, "replay", got, want)
					diffIndex(t, "replay", idx, wantIdx)
				})
			}
		}
	}
}

// traceOp is one system call on the -wal file recorded by gen.py.
type traceOp struct {
	op   byte // 'W' write, 'T' truncate, 'D' delete
	off  int64
	data []byte
}

func loadTrace(t testing.TB, name string) []traceOp {
	t.Helper()
	b := fixture(t, name)
	const magic = "WALTRACE1\n"
	if !bytes.HasPrefix(b, []byte(magic)) {
		t.Fatalf("%s: not a trace", name)
	}
	b = b[len(magic):]
	var ops []traceOp
	for len(b) > 0 {
		if len(b) < 13 {
			t.Fatalf("%s: truncated record", name)
		}
		op := traceOp{op: b[0], off: int64(binary.BigEndian.Uint64(b[1:]))}
		n := int(binary.BigEndian.Uint32(b[9:]))
		op.data = b[13 : 13+n]
		b = b[13+n:]
		ops = append(ops, op)
	}
	return ops
}

// TestTraceReplay replays the exact sequence of writes, truncates and deletes
// a real SQLite made on its -wal file (cache spill with in-place overwrites
// and checksum rewrites, a spilled rollback, restarts, journal_size_limit,
// wal_checkpoint(TRUNCATE), WAL deleted on close and created again). A
// replica built only from the emitted transactions must equal, after every
// commit, the database SQLite itself read at that moment.
func TestTraceReplay(t *testing.T) {
	exp := loadExpectation(t, "trace-512")
	ops := loadTrace(t, exp.Trace)
	db0 := fixture(t, exp.DB0)
	for _, mode := range replayModes {
		for _, poll := range []bool{false, true} {
			what := mode.name
			if poll {
				what += "/poll"
			}
			t.Run(what, func(t *testing.T) {
				img := append([]byte(nil), db0...)
				var n int
				sink := &recSink{}
				c := NewCapture(sink)
				f := &memFile{}
				rnd := rand.New(rand.NewPCG(1, 2))
				verify := func() {
					for ; n < len(sink.txns); n++ {
						g := sink.txns[n]
						if n >= len(exp.Txns) {
							t.Fatalf("emitted txn %d (commit %d): SQLite made only %d", n, g.Commit, len(exp.Txns))
						}
						want := exp.Txns[n]
						if g.Commit != want.Commit || !hasAll(g.Txn, want.Changed) {
							t.Fatalf("txn %d: commit %d pages %v, want commit %d with pages %v",
								n, g.Commit, g.Pages, want.Commit, want.Changed)
						}
						img = apply(img, g)
						if sum := sha256.Sum256(img); hex.EncodeToString(sum[:]) != want.SHA256 {
							t.Fatalf("txn %d: replica differs from what SQLite read", n)
						}
					}
				}
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
							off += int64(k)
							data = data[k:]
						}
					case 'T':
						f.Truncate(op.off)
						if poll {
							err = c.Poll(f, f.Size()) // Poll must notice by itself
						} else {
							c.Truncated(op.off)
						}
					case 'D':
						f = &memFile{}
						c.Reset()
					default:
						t.Fatalf("op %d: unknown op %q", i, op.op)
					}
					if err != nil {
						t.Fatalf("op %d (%c at %d): %v", i, op.op, op.off, err)
					}
					verify()
				}
				if n != len(exp.Txns) {
					t.Fatalf("emitted %d txns, SQLite committed %d", n, len(exp.Txns))
				}
				if sum := sha256.Sum256(img); hex.EncodeToString(sum[:]) != exp.FinalSHA256 {
					t.Errorf("final replica differs from the final database")
				}
			})
		}
	}
}
