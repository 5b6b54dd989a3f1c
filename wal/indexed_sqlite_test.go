package wal

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// pollPair polls one WAL with two captures: one validating every frame from
// the file (the checksum path), one handed the wal-index (PollIndexed). Each
// applies what it emits to its own image of the database.
type pollPair struct {
	t          *testing.T
	wal, shm   *os.File
	slow, fast *Capture
	ss, fs     *recSink
	simg, fimg []byte
	sn, fn     int // transactions applied
}

func newPollPair(t *testing.T, walPath, shmPath string, base []byte) *pollPair {
	t.Helper()
	w, err := os.Open(walPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.Open(shmPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); s.Close() })
	p := &pollPair{t: t, wal: w, shm: s, ss: &recSink{}, fs: &recSink{}}
	p.slow, p.fast = NewCapture(p.ss), NewCapture(p.fs)
	p.slow.MergePolls, p.fast.MergePolls = true, true
	p.fast.indexMin = 1
	size := p.size()
	if _, err := p.slow.Load(w, size); err != nil {
		t.Fatal(err)
	}
	if _, err := p.fast.Load(w, size); err != nil {
		t.Fatal(err)
	}
	p.simg, p.fimg = bytes.Clone(base), bytes.Clone(base)
	return p
}

func (p *pollPair) size() int64 {
	fi, err := p.wal.Stat()
	if err != nil {
		p.t.Fatal(err)
	}
	return fi.Size()
}

// poll polls both and requires the same database image from each.
func (p *pollPair) poll(when string) {
	p.t.Helper()
	size := p.size()
	if err := p.slow.Poll(p.wal, size); err != nil {
		p.t.Fatalf("%s: checksum path: %v", when, err)
	}
	if err := p.fast.PollIndexed(p.wal, p.shm, size); err != nil {
		p.t.Fatalf("%s: wal-index path: %v", when, err)
	}
	for ; p.sn < len(p.ss.txns); p.sn++ {
		p.simg = apply(p.simg, p.ss.txns[p.sn])
	}
	for ; p.fn < len(p.fs.txns); p.fn++ {
		p.fimg = apply(p.fimg, p.fs.txns[p.fn])
	}
	if !bytes.Equal(p.simg, p.fimg) {
		p.t.Fatalf("%s: the wal-index path's database (%d bytes) differs from the checksum path's (%d bytes)", when, len(p.fimg), len(p.simg))
	}
	si, fi := p.slow.Committed(), p.fast.Committed()
	if si.DBSize != fi.DBSize || si.End != fi.End || !mapsEqual(si.Pages, fi.Pages) {
		p.t.Fatalf("%s: committed index differs: checksum path size %d end %d, wal-index path size %d end %d",
			when, si.DBSize, si.End, fi.DBSize, fi.End)
	}
}

func (p *pollPair) seal() { p.slow.Seal(); p.fast.Seal() }

// TestIndexedMatchesChecksumPath drives a real SQLite (modernc.org/sqlite,
// which maps the -shm file as SQLite does) through 1-row commits, big
// transactions that spill the cache into the WAL before they commit,
// savepoints rolled back, rolled-back transactions, VACUUM and every kind of
// checkpoint, polling both capture paths between steps and in the middle of
// open transactions. Both must produce the same database after every poll,
// equal in the end to the checkpointed file, and the wal-index path must
// have taken a good part of the frames without reading them.
func TestIndexedMatchesChecksumPath(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { indexedRun(t, seed) })
	}
}

func indexedRun(t *testing.T, seed uint64) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)&_pragma=cache_size(16)&_pragma=synchronous(off)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)")
	exec("CREATE INDEX tk ON t(k)")
	exec("PRAGMA wal_checkpoint(TRUNCATE)")
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := newPollPair(t, path+"-wal", path+"-shm", base)

	rng := rand.New(rand.NewPCG(seed, 7))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	next := 0
	insert := func(n, size int) {
		for range n {
			next++
			exec("INSERT INTO t(id, k, v) VALUES(?, ?, ?)", next, fmt.Sprint("k", rng.IntN(1000)), blob(size))
		}
	}
	for step := range 80 {
		when := fmt.Sprintf("step %d", step)
		switch op := rng.IntN(9); op {
		case 0, 1: // a stream of 1-row commits
			insert(20+rng.IntN(100), 20+rng.IntN(200))
		case 2: // updates
			for range 30 {
				exec("UPDATE t SET v = ? WHERE id = ?", blob(50+rng.IntN(300)), 1+rng.IntN(max(next, 1)))
			}
		case 3: // a big transaction that spills the cache into the WAL
			exec("BEGIN")
			insert(200+rng.IntN(300), 500+rng.IntN(2000))
			p.poll(when + " (big transaction open)")
			exec("COMMIT")
		case 4: // savepoint rolled back inside a committed transaction
			exec("BEGIN")
			insert(5, 100)
			exec("SAVEPOINT a")
			insert(100+rng.IntN(200), 1500)
			exec("ROLLBACK TO a")
			insert(3, 100)
			exec("COMMIT")
		case 5: // a transaction rolled back
			exec("BEGIN")
			insert(50+rng.IntN(200), 1000)
			exec("ROLLBACK")
		case 6: // deletes, and sometimes VACUUM (shrinks the database)
			exec("DELETE FROM t WHERE id % ? = 0", 2+rng.IntN(4))
			if rng.IntN(2) == 0 {
				exec("VACUUM")
			}
		case 7, 8: // a checkpoint, after a poll, as walfs catches up before one
			p.poll(when + " (before checkpoint)")
			p.seal()
			mode := []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}[rng.IntN(4)]
			exec("PRAGMA wal_checkpoint(" + mode + ")")
			if mode == "TRUNCATE" {
				// walfs sees the truncation (a FUSE SETATTR) and tells
				// the capture, as here.
				p.slow.Truncated(p.size())
				p.fast.Truncated(p.size())
			}
			insert(1+rng.IntN(30), 100)
		}
		p.poll(when)
	}
	p.poll("end")
	exec("PRAGMA wal_checkpoint(TRUNCATE)")
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, p.fimg) {
		t.Fatalf("the checkpointed database (%d bytes) differs from what the wal-index path captured (%d bytes)", len(file), len(p.fimg))
	}
	st := p.fast.IndexStats()
	all := 0
	for _, g := range p.ss.txns {
		all += int((g.End - g.Offset) / (FrameHeaderSize + int64(g.PageSize)))
	}
	t.Logf("wal-index path: %d polls took %d of %d frames without reading them; refused %d", st.Polls, st.Frames, all, st.Refused)
	if st.Refused != 0 {
		t.Errorf("a wal-index SQLite wrote was refused %d times", st.Refused)
	}
	// Big transactions write most pages once and are validated in file
	// order; the 1-row streams are taken from the wal-index.
	if st.Polls < 10 || st.Frames*5 < uint64(all) {
		t.Errorf("the wal-index path took %d of %d frames from the wal-index in %d polls: want at least a fifth, in 10 polls or more", st.Frames, all, st.Polls)
	}
}
