package follow

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/restore"
)

const testPageSize = 4096

// history is a database's page images after every TXID (index = TXID),
// with page 1 starting like a SQLite database in WAL mode.
type history struct {
	states  [][]byte   // file image at each TXID; states[0] empty
	written [][]uint32 // pages each TXID wrote
}

// tx writes pgnos (and grows to pages) with fresh random content.
func (h *history) tx(pages uint32, pgnos ...uint32) uint64 {
	txid := uint64(len(h.states))
	prev := []byte{}
	if txid > 0 {
		prev = h.states[txid-1]
	}
	img := make([]byte, int(pages)*testPageSize)
	copy(img, prev)
	for pg := uint32(len(prev)/testPageSize) + 1; pg <= pages; pg++ {
		pgnos = append(pgnos, pg)
	}
	slices.Sort(pgnos)
	pgnos = slices.Compact(pgnos)
	for _, pg := range pgnos {
		page := img[int(pg-1)*testPageSize : int(pg)*testPageSize]
		rng := rand.New(rand.NewPCG(txid, uint64(pg)))
		for i := range page {
			page[i] = byte(rng.Uint32())
		}
		if pg == 1 {
			copy(page, "SQLite format 3\x00")
			binary.BigEndian.PutUint16(page[16:], testPageSize)
			page[18], page[19] = 2, 2
		}
	}
	if len(h.states) == 0 {
		h.states, h.written = append(h.states, nil), append(h.written, nil)
		txid = 1
	}
	h.states = append(h.states, img)
	h.written = append(h.written, pgnos)
	return uint64(len(h.states) - 1)
}

func (h *history) checksum(txid uint64) ltx.Checksum {
	img := h.states[txid]
	sum, err := restore.Checksum(bytes.NewReader(img), testPageSize, uint32(len(img)/testPageSize))
	if err != nil {
		panic(err)
	}
	return sum
}

// put writes the LTX file for minTXID..maxTXID at level into st.
func (h *history) put(t *testing.T, st s3backend.Store, db string, level int, minTXID, maxTXID uint64) {
	t.Helper()
	img := h.states[maxTXID]
	commit := uint32(len(img) / testPageSize)
	var pgnos []uint32
	if level == s3backend.LevelSnapshot {
		for pg := uint32(1); pg <= commit; pg++ {
			pgnos = append(pgnos, pg)
		}
	} else {
		for txid := minTXID; txid <= maxTXID; txid++ {
			for _, pg := range h.written[txid] {
				if pg <= commit {
					pgnos = append(pgnos, pg)
				}
			}
		}
		slices.Sort(pgnos)
		pgnos = slices.Compact(pgnos)
	}
	hdr := ltx.Header{Version: ltx.Version, PageSize: testPageSize, Commit: commit, MinTXID: ltx.TXID(minTXID), MaxTXID: ltx.TXID(maxTXID), Timestamp: int64(maxTXID) * 1000}
	if level == s3backend.LevelSnapshot {
		hdr.MinTXID = 1
	} else {
		hdr.PreApplyChecksum = h.checksum(minTXID - 1)
	}
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	for _, pg := range pgnos {
		if err := enc.EncodePage(ltx.PageHeader{Pgno: pg}, img[int(pg-1)*testPageSize:int(pg)*testPageSize]); err != nil {
			t.Fatal(err)
		}
	}
	enc.SetPostApplyChecksum(h.checksum(maxTXID))
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	info := s3backend.FileInfo{DB: db, Level: level, MinTXID: uint64(hdr.MinTXID), MaxTXID: maxTXID}
	if _, err := st.Write(context.Background(), info, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
}

func newTestFollower(t *testing.T, st s3backend.Store, dir string) *Follower {
	t.Helper()
	f, err := New(Options{Store: st, DataDir: dir, Integrity: restore.IntegrityNone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// requireAt checks the followed file is the history's image at txid and
// the follower says so.
func requireAt(t *testing.T, f *Follower, h *history, db string, txid uint64) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(f.opts.DataDir, db))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, h.states[txid]) {
		t.Fatalf("%s: file is not the database at TXID %d (%d bytes, want %d)", db, txid, len(got), len(h.states[txid]))
	}
	for _, d := range f.Status().DBs {
		if d.DB == db {
			if d.TXID != txid || d.Error != "" {
				t.Fatalf("%s: status says TXID %d (error %q), want %d", db, d.TXID, d.Error, txid)
			}
			return
		}
	}
	t.Fatalf("%s: not in status", db)
}

func TestFollowerAppliesExtendsAndRestores(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	h := &history{}
	h.tx(3)
	h.tx(3, 2)
	h.put(t, st, "app.db", s3backend.LevelSnapshot, 1, 2)
	dir := t.TempDir()
	f := newTestFollower(t, st, dir)
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	requireAt(t, f, h, "app.db", 2)

	// Level-0 files extend it in place, pages and size.
	h.tx(5, 1)
	h.put(t, st, "app.db", 0, 3, 3)
	h.tx(5, 4)
	h.tx(6, 2)
	h.put(t, st, "app.db", 0, 4, 5)
	f.Step(ctx)
	requireAt(t, f, h, "app.db", 5)
	if vs := f.Verify(ctx); len(vs) != 1 || !vs[0].Equal() || vs[0].TXID != 5 || vs[0].ReplicaTXID != 5 {
		t.Fatalf("verify: %+v", vs)
	}

	// The header readers see: rollback journal, a counter that moved, the
	// size now.
	hdr := slices.Clone(h.states[5][:100])
	f.PatchHeader("app.db", 0, hdr)
	if hdr[18] != 1 || hdr[19] != 1 || binary.BigEndian.Uint32(hdr[24:]) != 5 || binary.BigEndian.Uint32(hdr[28:]) != 6 || binary.BigEndian.Uint32(hdr[92:]) != 5 {
		t.Fatalf("patched header: versions %d/%d counter %d size %d valid-for %d", hdr[18], hdr[19], binary.BigEndian.Uint32(hdr[24:]), binary.BigEndian.Uint32(hdr[28:]), binary.BigEndian.Uint32(hdr[92:]))
	}
	part := slices.Clone(h.states[5][20:30]) // a read starting inside the header
	f.PatchHeader("app.db", 20, part)
	if binary.BigEndian.Uint32(part[4:]) != 5 {
		t.Fatalf("a read from offset 20 was not patched: %x", part)
	}

	// The files it needs were compacted away: a snapshot further on and a
	// file after it. The follower restores and copies in place, keeping
	// the inode readers have open.
	before, _ := os.Stat(filepath.Join(dir, "app.db"))
	for txid := 6; txid <= 9; txid++ {
		h.tx(4, uint32(txid%4)+1)
	}
	h.put(t, st, "app.db", s3backend.LevelSnapshot, 1, 8)
	h.put(t, st, "app.db", 0, 9, 9)
	if err := st.Delete(ctx, []s3backend.FileInfo{{DB: "app.db", Level: 0, MinTXID: 3, MaxTXID: 3}, {DB: "app.db", Level: 0, MinTXID: 4, MaxTXID: 5}}); err != nil {
		t.Fatal(err)
	}
	f.Step(ctx)
	requireAt(t, f, h, "app.db", 9)
	after, _ := os.Stat(filepath.Join(dir, "app.db"))
	if !os.SameFile(before, after) {
		t.Fatal("the database was replaced by another file: readers holding it open would never see updates")
	}
	if s := f.Status().DBs[0]; s.Reloads != 1 {
		t.Fatalf("reloads = %d, want 1", s.Reloads)
	}
}

func TestFollowerRestoresWhatItCannotTrust(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	h := &history{}
	h.tx(4)
	h.put(t, st, "a.db", s3backend.LevelSnapshot, 1, 1)
	h.put(t, st, "sub/b.db", s3backend.LevelSnapshot, 1, 1)
	dir := t.TempDir()
	f := newTestFollower(t, st, dir)
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	requireAt(t, f, h, "sub/b.db", 1)
	bad := filepath.Join(dir, "sub/b.db")
	img, _ := os.ReadFile(bad)
	img[testPageSize+1] ^= 1
	if err := os.WriteFile(bad, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if vs := f.Verify(ctx); len(vs) != 2 || !vs[0].Equal() || vs[1].Difference == "" {
		t.Fatalf("verify after a byte of sub/b.db changed: %+v", vs)
	}

	// A page changed behind its back: the follower trusts its own file
	// between updates (only it writes there), but the page an update
	// replaces is read back first, so the checksum after the update does
	// not match the file's and it restores instead of serving a wrong
	// database.
	path := filepath.Join(dir, "a.db")
	b, _ := os.ReadFile(path)
	b[2*testPageSize+7] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h.tx(4, 3)
	h.put(t, st, "a.db", 0, 2, 2)
	f.Step(ctx)
	requireAt(t, f, h, "a.db", 2)

	// An update cut short by a crash (marker left): a new follower
	// restores it at start.
	if err := f.mark("a.db"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	b[testPageSize*2+1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	g := newTestFollower(t, st, dir)
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	requireAt(t, g, h, "a.db", 2)
	if g.marked("a.db") {
		t.Fatal("marker left after the restore")
	}

	// A database deleted from the replica disappears.
	objs, _ := st.List(ctx, "sub/b.db", s3backend.LevelSnapshot)
	if err := st.Delete(ctx, objs); err != nil {
		t.Fatal(err)
	}
	g.Step(ctx)
	if _, err := os.Stat(filepath.Join(dir, "sub/b.db")); !os.IsNotExist(err) {
		t.Fatalf("deleted database still there: %v", err)
	}
	if n := len(g.Status().DBs); n != 1 {
		t.Fatalf("status lists %d databases, want 1", n)
	}
}

func TestSumFileTracksChecksum(t *testing.T) {
	h := &history{}
	h.tx(6)
	h.tx(3, 1, 2)
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, h.states[1], 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sf, err := newSumFile(file, testPageSize, h.checksum(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.WriteAt(h.states[2][:2*testPageSize], 0); err != nil {
		t.Fatal(err)
	}
	if err := sf.Truncate(3 * testPageSize); err != nil {
		t.Fatal(err)
	}
	if got, want := sf.Checksum(), h.checksum(2); got != want {
		t.Fatalf("checksum %s, want %s", got, want)
	}
	if _, err := sf.WriteAt(make([]byte, 10), 0); err == nil {
		t.Fatal("a write of part of a page was accepted")
	}
}

// hintSource answers every poll with what the test set, like a head object.
type hintSource struct{ dbs map[string]Latest }

func (s *hintSource) Poll(context.Context) (map[string]Latest, bool, error) { return s.dbs, true, nil }
func (s *hintSource) String() string                                        { return "hints" }

// The head names a file that compaction removed since: the follower lists
// and uses the compacted file instead of failing at every poll.
func TestFollowerListsWhenAHintedFileIsGone(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	h := &history{}
	h.tx(3)
	h.put(t, st, "app.db", s3backend.LevelSnapshot, 1, 1)
	src := &hintSource{}
	f, err := New(Options{Store: st, DataDir: t.TempDir(), Source: src, Integrity: restore.IntegrityNone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.tx(3, 2)
	h.tx(4, 3)
	h.put(t, st, "app.db", 0, 2, 2)
	h.put(t, st, "app.db", 0, 3, 3)
	h.put(t, st, "app.db", 1, 2, 3)
	if err := st.Delete(ctx, []s3backend.FileInfo{{DB: "app.db", Level: 0, MinTXID: 2, MaxTXID: 2}}); err != nil {
		t.Fatal(err)
	}
	src.dbs = map[string]Latest{"app.db": {TXID: 3, Files: []s3backend.FileInfo{
		{DB: "app.db", Level: 0, MinTXID: 2, MaxTXID: 2}, {DB: "app.db", Level: 0, MinTXID: 3, MaxTXID: 3}}}}
	f.Step(ctx)
	requireAt(t, f, h, "app.db", 3)
	if s := f.Status().DBs[0]; s.Reloads != 0 || s.Applied != 1 {
		t.Fatalf("applied %d, reloads %d: want the compacted file applied, no restore", s.Applied, s.Reloads)
	}

	// The primary deleted it: its objects stay in the store, the head
	// says Deleted, the follower's copy goes.
	src.dbs = map[string]Latest{"app.db": {TXID: 3, Deleted: true}}
	f.Step(ctx)
	if _, err := os.Stat(filepath.Join(f.opts.DataDir, "app.db")); !os.IsNotExist(err) {
		t.Fatalf("deleted database still served: %v", err)
	}
	if n := len(f.Status().DBs); n != 0 {
		t.Fatalf("status lists %d databases after the deletion", n)
	}
}
