package wal

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// memFile is an in-memory WAL file.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Truncate(size int64) {
	if size < int64(len(m.b)) {
		m.b = m.b[:size]
		return
	}
	m.b = append(m.b, make([]byte, size-int64(len(m.b)))...)
}

func (m *memFile) Size() int64 { return int64(len(m.b)) }

// gotTxn is an emitted transaction with the page images the sink read.
type gotTxn struct {
	Txn
	data map[uint32][]byte
}

// recSink records every transaction and copies its pages during Commit, as a
// real sink must. check, when set, runs first and may fail the commit.
type recSink struct {
	txns  []gotTxn
	check func(txn *Txn, r io.ReaderAt) error
}

func (s *recSink) Commit(txn *Txn, r io.ReaderAt) error {
	if s.check != nil {
		if err := s.check(txn, r); err != nil {
			return err
		}
	}
	g := gotTxn{Txn: *txn, data: map[uint32][]byte{}}
	for _, p := range txn.Pages {
		b := make([]byte, txn.PageSize)
		if _, err := r.ReadAt(b, p.Offset); err != nil {
			return fmt.Errorf("read page %d: %w", p.Pgno, err)
		}
		g.data[p.Pgno] = b
	}
	s.txns = append(s.txns, g)
	return nil
}

// apply writes the transaction's pages into a database image and sizes it to
// the commit, as a replica would.
func apply(img []byte, t gotTxn) []byte {
	ps := int(t.PageSize)
	want := int(t.Commit) * ps
	if len(img) < want {
		img = append(img, make([]byte, want-len(img))...)
	}
	img = img[:want]
	for pgno, b := range t.data {
		copy(img[(int(pgno)-1)*ps:], b)
	}
	return img
}

// refSum is a deliberately plain version of SQLite's walChecksumBytes.
func refSum(bigEndian bool, s [2]uint32, b []byte) [2]uint32 {
	for i := 0; i+8 <= len(b); i += 8 {
		var x0, x1 uint32
		if bigEndian {
			x0 = uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
			x1 = uint32(b[i+4])<<24 | uint32(b[i+5])<<16 | uint32(b[i+6])<<8 | uint32(b[i+7])
		} else {
			x0 = uint32(b[i+3])<<24 | uint32(b[i+2])<<16 | uint32(b[i+1])<<8 | uint32(b[i])
			x1 = uint32(b[i+7])<<24 | uint32(b[i+6])<<16 | uint32(b[i+5])<<8 | uint32(b[i+4])
		}
		s[0] += x0 + s[1]
		s[1] += x1 + s[0]
	}
	return s
}

// refParse is an independent, whole-file transcription of SQLite's
// walIndexRecover, extended with the pending-rewrite rule (doc.go): the
// transactions the live SQLite connection that wrote the file committed, and
// the resulting index. It shares no code with the package under test.
//
// The extension: a frame whose salts and checksums are all zero, with a page
// number and no commit, is taken as it stands (SQLite wrote it while a
// checksum rewrite was pending and never rewrote it), and the checksum chain
// goes on from the (0, 0) stored in it; the salt and checksum checks apply
// unchanged to every other frame.
func refParse(b []byte) ([]Txn, *Index) { return refParseMode(b, false) }

// refParseStrict is walIndexRecover alone: what SQLite's recovery replays
// (a reopen, or a copy of the files), which drops transactions the live
// connection committed after a pending-rewrite frame.
func refParseStrict(b []byte) ([]Txn, *Index) { return refParseMode(b, true) }

func refParseMode(b []byte, strict bool) ([]Txn, *Index) {
	idx := &Index{Pages: map[uint32]int64{}, End: HeaderSize}
	u32 := func(off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }
	if len(b) < HeaderSize {
		return nil, idx
	}
	magic, ps := u32(0), u32(8)
	if magic&^1 != 0x377f0682 || ps&(ps-1) != 0 || ps > 65536 || ps < 512 {
		return nil, idx
	}
	be := magic&1 == 1
	s := refSum(be, [2]uint32{}, b[:24])
	if s[0] != u32(24) || s[1] != u32(28) || u32(4) != 3007000 {
		return nil, idx
	}
	salt1, salt2 := u32(16), u32(20)
	fs := 24 + int(ps)
	var txns []Txn
	all := map[uint32]int64{}
	var pending []PageRef
	start := HeaderSize
	for off := HeaderSize; off+fs <= len(b); off += fs {
		pgno, commit := u32(off), u32(off+4)
		if !strict && pgno != 0 && commit == 0 &&
			u32(off+8) == 0 && u32(off+12) == 0 && u32(off+16) == 0 && u32(off+20) == 0 {
			s = [2]uint32{} // what walRewriteChecksums reads back from this frame
			pending = append(pending, PageRef{pgno, int64(off + 24)})
			continue
		}
		if u32(off+8) != salt1 || u32(off+12) != salt2 || pgno == 0 {
			break
		}
		s = refSum(be, s, b[off:off+8])
		s = refSum(be, s, b[off+24:off+fs])
		if s[0] != u32(off+16) || s[1] != u32(off+20) {
			break
		}
		pending = append(pending, PageRef{pgno, int64(off + 24)})
		if commit == 0 {
			continue
		}
		last := map[uint32]int64{}
		for _, p := range pending {
			all[p.Pgno] = p.Offset
			if p.Pgno <= commit {
				last[p.Pgno] = p.Offset
			}
		}
		t := Txn{PageSize: ps, Commit: commit, Salt1: salt1, Salt2: salt2,
			Offset: int64(start), End: int64(off + fs)}
		for pgno, o := range last {
			t.Pages = append(t.Pages, PageRef{pgno, o})
		}
		slices.SortFunc(t.Pages, func(a, b PageRef) int { return int(a.Pgno) - int(b.Pgno) })
		txns = append(txns, t)
		pending = pending[:0]
		start = off + fs
		idx.DBSize = commit
		idx.End = int64(off + fs)
	}
	idx.PageSize, idx.Salt1, idx.Salt2 = ps, salt1, salt2
	for pgno, o := range all {
		if pgno <= idx.DBSize {
			idx.Pages[pgno] = o
		}
	}
	return txns, idx
}

// fixture reads a gzipped file from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectation is a fixture's JSON file, written by testdata/gen.py.
type expectation struct {
	PageSize uint32 `json:"page_size"`
	WAL      string `json:"wal"`
	DB       string `json:"db"`
	Trace    string `json:"trace"`
	DB0      string `json:"db0"`
	Txns     []struct {
		Commit  uint32   `json:"commit"`
		Changed []uint32 `json:"changed"`
		SHA256  string   `json:"sha256"`
	} `json:"txns"`
	FinalSHA256 string `json:"final_sha256"`
	Rows        int    `json:"rows"`

	// savepoint-512 only: what the live connection and recovery read.
	LiveRows       int    `json:"live_rows"`
	LiveSum        int64  `json:"live_sum"`
	LiveSHA256     string `json:"live_sha256"`
	RecoveryRows   int    `json:"recovery_rows"`
	RecoverySum    int64  `json:"recovery_sum"`
	RecoverySHA256 string `json:"recovery_sha256"`
	ZeroedFrames   []int  `json:"zeroed_frames"`
	SQLiteVersion  string `json:"sqlite_version"`
}

func loadExpectation(t testing.TB, name string) expectation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectation
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

var goldens = []string{"golden-512", "golden-4096", "golden-65536"}

// parseAll emits every transaction of a whole file through Poll on a fresh
// capture: the "full-file parse" the incremental paths are compared with.
func parseAll(t testing.TB, b []byte) []gotTxn {
	t.Helper()
	sink := &recSink{}
	if err := NewCapture(sink).Poll(&memFile{b}, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return sink.txns
}

func stripData(g []gotTxn) []Txn {
	out := make([]Txn, len(g))
	for i := range g {
		out[i] = g[i].Txn
	}
	return out
}

func equalTxns(a, b []Txn) bool {
	return slices.EqualFunc(a, b, func(x, y Txn) bool {
		return x.PageSize == y.PageSize && x.Commit == y.Commit && x.Salt1 == y.Salt1 &&
			x.Salt2 == y.Salt2 && x.Offset == y.Offset && x.End == y.End && slices.Equal(x.Pages, y.Pages)
	})
}

func diffTxns(t testing.TB, what string, got, want []Txn) {
	t.Helper()
	if equalTxns(got, want) {
		return
	}
	t.Errorf("%s: got %d txns, want %d", what, len(got), len(want))
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = fmt.Sprintf("%d..%d commit %d pages %v", got[i].Offset, got[i].End, got[i].Commit, got[i].Pages)
		}
		if i < len(want) {
			w = fmt.Sprintf("%d..%d commit %d pages %v", want[i].Offset, want[i].End, want[i].Commit, want[i].Pages)
		}
		if g != w {
			t.Errorf("  txn %d:\n    got  %s\n    want %s", i, g, w)
		}
	}
}

func equalIndex(a, b *Index) bool {
	if a.DBSize == 0 && b.DBSize == 0 && len(a.Pages) == 0 && len(b.Pages) == 0 && a.End == b.End {
		return true // no committed txn: page size and salts do not matter
	}
	return a.PageSize == b.PageSize && a.DBSize == b.DBSize && a.Salt1 == b.Salt1 &&
		a.Salt2 == b.Salt2 && a.End == b.End && mapsEqual(a.Pages, b.Pages)
}

func mapsEqual(a, b map[uint32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func diffIndex(t testing.TB, what string, got, want *Index) {
	t.Helper()
	if !equalIndex(got, want) {
		t.Errorf("%s: index\n  got  ps=%d db=%d salts=%x/%x end=%d pages=%v\n  want ps=%d db=%d salts=%x/%x end=%d pages=%v",
			what, got.PageSize, got.DBSize, got.Salt1, got.Salt2, got.End, got.Pages,
			want.PageSize, want.DBSize, want.Salt1, want.Salt2, want.End, want.Pages)
	}
}

// hasAll reports whether every page in want is among the txn's pages.
func hasAll(t Txn, want []uint32) bool {
	for _, p := range want {
		if !slices.ContainsFunc(t.Pages, func(r PageRef) bool { return r.Pgno == p }) {
			return false
		}
	}
	return true
}

// skipOrFail skips a test whose tool is missing, or fails it when
// WALFS_TEST_DISALLOW_SKIP=1 (CI) forbids skipping.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("WALFS_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("%s (WALFS_TEST_DISALLOW_SKIP=1 forbids skipping)", why)
	}
	t.Skip(why)
}
