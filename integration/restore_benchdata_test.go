package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/superfly/ltx"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/walfs/walfs/s3backend"
)

// The restore benchmark's replica: a real SQLite database of a given size,
// snapshotted at level 9, then a day of changes made by real SQLite
// transactions and stored the way Litestream's compaction leaves them after
// a day: one level-3 file per hour, level-2 files for the 5-minute windows
// of the current hour, level-1 files for the 30-second windows of the
// current 5 minutes, and a few level-0 files. Each file holds exactly the
// pages its SQLite transactions wrote (read back from the WAL before each
// checkpoint) with the checksums docs/format.md describes, so both walfs
// and Litestream restore it and the result must be byte-identical to the
// source database.

// benchGenScript creates the table and fills it to about argv[2] MiB with
// rows that compress like real ones (text partly repetitive, a random blob).
const benchGenScript = `
import sqlite3, sys
path, mb = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path, isolation_level=None)
c.execute("pragma page_size=4096")
c.execute("pragma journal_mode=off")
c.execute("pragma synchronous=off")
c.execute("create table t(id integer primary key, name text, email text, profile text, n integer, b blob)")
c.execute("create index t_email on t(email)")
rows = mb * 1024 * 1024 // 1100
c.execute("begin")
c.execute("""with recursive s(x) as (select 1 union all select x+1 from s where x < ?)
insert into t select x, printf('user-%08d', x), printf('user%d@example.com', x),
 printf('{"id":%d,"bio":"%s","seed":"%s"}', x, replace(hex(zeroblob(20 + x % 40)), '00', 'lorem ipsum '), hex(randomblob(16))),
 0, randomblob(300) from s""", (rows,))
c.execute("commit")
c.execute("pragma journal_mode=wal")
c.close()
print(rows)
`

// dayReplica describes a replica built by buildDayReplica.
type dayReplica struct {
	Src     string   // the source database, equal to the replica's latest state
	SHA256  [32]byte // of Src
	Size    int64    // of Src
	Objects [10]int  // objects per level
	Bytes   int64    // bytes stored
	TXID    uint64   // latest TXID
}

// benchGen writes the LTX files of one database into a store.
type benchGen struct {
	tb       testing.TB
	st       s3backend.Store
	db       string // path in the replica
	src      string
	tmp      string
	pageSize uint32
	commit   uint32       // database size in pages
	sum      ltx.Checksum // XOR of page checksums, without ltx.ChecksumFlag
	txid     uint64
	out      *dayReplica
}

// buildDayReplica builds the replica of a ~mb MiB database into st under db.
func buildDayReplica(tb testing.TB, st s3backend.Store, db string, mb int) *dayReplica {
	tb.Helper()
	dir := tb.TempDir()
	out := &dayReplica{Src: filepath.Join(dir, "src.db")}
	start := time.Now()
	gen, err := exec.Command("python3", "-c", benchGenScript, out.Src, strconv.Itoa(mb)).CombinedOutput()
	if err != nil {
		tb.Fatalf("generate database: %v\n%s", err, gen)
	}
	rows, err := strconv.Atoi(string(bytes.TrimSpace(gen)))
	if err != nil {
		tb.Fatalf("generate database: %q: %v", gen, err)
	}
	tb.Logf("generated a %d-row database in %s", rows, time.Since(start).Round(time.Millisecond))

	g := &benchGen{tb: tb, st: st, db: db, src: out.Src, tmp: dir, pageSize: 4096, out: out}
	base := time.Now().Add(-25 * time.Hour).Truncate(time.Hour)
	g.snapshot(base)

	sqldb, err := sql.Open("sqlite", "file:"+out.Src)
	if err != nil {
		tb.Fatal(err)
	}
	defer sqldb.Close()
	sqldb.SetMaxOpenConns(1)
	for _, p := range []string{"pragma journal_mode=wal", "pragma wal_autocheckpoint=0", "pragma synchronous=off"} {
		if _, err := sqldb.Exec(p); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
	}

	// A day at 0.25% of the rows updated per hour, and some growth.
	perHour := max(rows/400, 20)
	rnd := rand.New(rand.NewPCG(1, 2))
	period := func(level, txns, updates, inserts int, at time.Time) {
		g.change(sqldb, rnd, rows, txns, updates, inserts)
		g.commitPeriod(level, uint64(txns), at)
	}
	for h := range 24 {
		period(3, 120, perHour, perHour/10, base.Add(time.Duration(h+1)*time.Hour))
	}
	now := base.Add(24 * time.Hour)
	for k := range 11 {
		period(2, 10, perHour/12, perHour/120, now.Add(time.Duration(k+1)*5*time.Minute))
	}
	now = now.Add(55 * time.Minute)
	for k := range 9 {
		period(1, 2, max(perHour/120, 2), 1, now.Add(time.Duration(k+1)*30*time.Second))
	}
	now = now.Add(270 * time.Second)
	for k := range 5 {
		period(0, 1, 3, 0, now.Add(time.Duration(k+1)*5*time.Second))
	}

	f, err := os.Open(out.Src)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if out.Size, err = io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	copy(out.SHA256[:], h.Sum(nil))
	out.TXID = g.txid
	if want := int64(g.commit) * int64(g.pageSize); out.Size != want {
		tb.Fatalf("source database is %d bytes, the replica says %d", out.Size, want)
	}
	tb.Logf("built the replica in %s: %d objects, %d bytes, TXID %d", time.Since(start).Round(time.Millisecond), sumInts(out.Objects[:]), out.Bytes, out.TXID)
	return out
}

// snapshot stores every page of the database as TXID 1 at level 9.
func (g *benchGen) snapshot(at time.Time) {
	f, err := os.Open(g.src)
	if err != nil {
		g.tb.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		g.tb.Fatal(err)
	}
	g.commit = uint32(fi.Size() / int64(g.pageSize))
	g.txid = 1
	lock := ltx.LockPgno(g.pageSize)
	r := bufio.NewReaderSize(f, 1<<20)
	data := make([]byte, g.pageSize)
	g.put(s3backend.LevelSnapshot, 1, 1, at, 0, func(enc *ltx.Encoder) {
		for pgno := uint32(1); pgno <= g.commit; pgno++ {
			if _, err := io.ReadFull(r, data); err != nil {
				g.tb.Fatal(err)
			}
			if pgno == lock {
				continue
			}
			g.sum ^= ltx.ChecksumPage(pgno, data)
			if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, data); err != nil {
				g.tb.Fatal(err)
			}
		}
	})
}

// change runs txns SQLite transactions that update and insert rows.
func (g *benchGen) change(db *sql.DB, rnd *rand.Rand, rows, txns, updates, inserts int) {
	for i := range txns {
		tx, err := db.Begin()
		if err != nil {
			g.tb.Fatal(err)
		}
		for range updates/txns + boolInt(i < updates%txns) {
			if _, err := tx.Exec("update t set n = n + 1, b = randomblob(300) where id = ?", 1+rnd.IntN(rows)); err != nil {
				g.tb.Fatal(err)
			}
		}
		for range inserts/txns + boolInt(i < inserts%txns) {
			if _, err := tx.Exec(`insert into t(name, email, profile, n, b) values ('new', 'new@example.com', '{}', 0, randomblob(300))`); err != nil {
				g.tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			g.tb.Fatal(err)
		}
	}
}

// commitPeriod stores the pages the WAL holds as one file of txns TXIDs at
// level, then checkpoints the WAL into the database.
func (g *benchGen) commitPeriod(level int, txns uint64, at time.Time) {
	pages, commit := readWALPages(g.tb, g.src+"-wal")
	if commit < g.commit {
		g.tb.Fatalf("database shrank from %d to %d pages; the generator only grows it", g.commit, commit)
	}
	db, err := os.Open(g.src)
	if err != nil {
		g.tb.Fatal(err)
	}
	defer db.Close()
	pgnos := make([]uint32, 0, len(pages))
	old := make([]byte, g.pageSize)
	pre := ltx.ChecksumFlag | g.sum
	for pgno, data := range pages {
		pgnos = append(pgnos, pgno)
		if pgno <= g.commit {
			if _, err := db.ReadAt(old, int64(pgno-1)*int64(g.pageSize)); err != nil {
				g.tb.Fatal(err)
			}
			g.sum ^= ltx.ChecksumPage(pgno, old)
		}
		g.sum ^= ltx.ChecksumPage(pgno, data)
	}
	slices.Sort(pgnos)
	g.commit = commit
	minTXID := g.txid + 1
	g.txid += txns
	g.put(level, minTXID, g.txid, at, pre, func(enc *ltx.Encoder) {
		for _, pgno := range pgnos {
			if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, pages[pgno]); err != nil {
				g.tb.Fatal(err)
			}
		}
	})
	checkpoint(g.tb, g.src)
}

// put encodes one LTX file into a temporary file and stores it.
func (g *benchGen) put(level int, minTXID, maxTXID uint64, at time.Time, pre ltx.Checksum, pages func(*ltx.Encoder)) {
	path := filepath.Join(g.tmp, "obj.ltx")
	f, err := os.Create(path)
	if err != nil {
		g.tb.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	enc, err := ltx.NewEncoder(w)
	if err != nil {
		g.tb.Fatal(err)
	}
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: g.pageSize, Commit: g.commit,
		MinTXID: ltx.TXID(minTXID), MaxTXID: ltx.TXID(maxTXID), Timestamp: at.UnixMilli(), PreApplyChecksum: pre,
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		g.tb.Fatalf("encode header %d-%d: %v", minTXID, maxTXID, err)
	}
	pages(enc)
	enc.SetPostApplyChecksum(ltx.ChecksumFlag | g.sum)
	if err := enc.Close(); err != nil {
		g.tb.Fatalf("encode %d-%d: %v", minTXID, maxTXID, err)
	}
	if err := w.Flush(); err != nil {
		g.tb.Fatal(err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		g.tb.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		g.tb.Fatal(err)
	}
	info := s3backend.FileInfo{DB: g.db, Level: level, MinTXID: minTXID, MaxTXID: maxTXID, CreatedAt: at}
	if _, err := g.st.Write(context.Background(), info, f, size); err != nil {
		g.tb.Fatalf("store %s: %v", s3backend.Key(info), err)
	}
	g.out.Objects[level]++
	g.out.Bytes += size
}

// readWALPages returns the newest committed version of every page in a WAL
// file and the database size after its last commit. The generator
// checkpoints with TRUNCATE after every period, so every frame whose salts
// match the header belongs to the current WAL.
func readWALPages(tb testing.TB, path string) (map[uint32][]byte, uint32) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 32 {
		tb.Fatalf("read WAL %s: %d bytes, %v", path, len(data), err)
	}
	pageSize := int(binary.BigEndian.Uint32(data[8:]))
	frame := 24 + pageSize
	pages, pending := map[uint32][]byte{}, map[uint32][]byte{}
	var commit uint32
	for off := 32; off+frame <= len(data); off += frame {
		h := data[off : off+24]
		if !bytes.Equal(h[8:16], data[16:24]) {
			break
		}
		pending[binary.BigEndian.Uint32(h)] = data[off+24 : off+frame]
		if c := binary.BigEndian.Uint32(h[4:]); c != 0 {
			for pgno, p := range pending {
				pages[pgno] = p
			}
			clear(pending)
			commit = c
		}
	}
	if commit == 0 {
		tb.Fatalf("WAL %s holds no commit", path)
	}
	return pages, commit
}

// checkpoint copies the WAL into the database and truncates it, from a
// connection of its own (the writer's stays open).
func checkpoint(tb testing.TB, path string) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var busy, logFrames, done int
	if err := db.QueryRow("pragma wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil || busy != 0 {
		tb.Fatalf("checkpoint %s: busy=%d, %v", path, busy, err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sumInts(a []int) int {
	n := 0
	for _, v := range a {
		n += v
	}
	return n
}
