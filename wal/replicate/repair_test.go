package replicate

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/restore"
)

// liveReplicator starts a passthrough Replicator over app.db, a WAL database
// held open by the returned connection, replicating to inner. Its
// maintenance loop runs on real time (the inotify watcher blocks in poll, so
// it cannot live in a synctest bubble) with schedules no test outlasts: the
// tests run jobs themselves. Commits are captured when the test flushes.
// idleInterval is a maintenance schedule no test outlasts.
const idleInterval = 1000 * time.Hour

func liveReplicator(t *testing.T, inner s3backend.Store, maint MaintenanceOptions) (*Replicator, *sql.DB) {
	t.Helper()
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "app.db")
	makeWALDatabase(t, path, 5)
	db := openLive(t, path)
	for _, q := range []string{"pragma wal_autocheckpoint=0", "insert into t(v) values('before start')"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	maint.CompactionIntervals = [s3backend.MaxCompactionLevel]time.Duration{idleInterval, idleInterval, idleInterval}
	r, err := New(Options{DataDir: dataDir, Store: inner, Logger: testLogger(t), Capture: CapturePassthrough, Maintenance: maint})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitResumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	wf, err := os.OpenFile(path+"-wal", os.O_RDWR, 0) // what the mount does when SQLite opens the WAL
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wf.Close() })
	if err := r.WALOpen("app.db", wf); err != nil {
		t.Fatal(err)
	}
	return r, db
}

// commitAndFlush runs one write per query and uploads what was captured.
func commitAndFlush(t *testing.T, r *Replicator, db *sql.DB, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// newestFile returns the file with the highest MaxTXID in the store.
func newestFile(t *testing.T, st s3backend.Store) s3backend.FileInfo {
	t.Helper()
	var newest s3backend.FileInfo
	for _, level := range levels {
		files, err := st.List(t.Context(), "app.db", level)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.MaxTXID > newest.MaxTXID {
				newest = f
			}
		}
	}
	return newest
}

// rewrite replaces the object info in st with what change makes of its
// bytes, behind the index's back.
func rewrite(t *testing.T, st *memstore.Store, info s3backend.FileInfo, change func([]byte) []byte) {
	t.Helper()
	if err := st.Rewrite(info, change); err != nil {
		t.Fatal(err)
	}
}

// changePageKeepChecksum re-encodes an LTX file with one byte of its last
// page changed and its original post-apply checksum: a well-formed object
// (its CRC is right) that does not describe the database it claims to.
func changePageKeepChecksum(t *testing.T) func([]byte) []byte {
	return func(b []byte) []byte {
		dec := ltx.NewDecoder(bytes.NewReader(b))
		if err := dec.DecodeHeader(); err != nil {
			t.Fatal(err)
		}
		hdr := dec.Header()
		type page struct {
			pgno uint32
			data []byte
		}
		var pages []page
		for {
			var ph ltx.PageHeader
			data := make([]byte, hdr.PageSize)
			if err := dec.DecodePage(&ph, data); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, page{ph.Pgno, data})
		}
		if err := dec.Close(); err != nil {
			t.Fatal(err)
		}
		pages[len(pages)-1].data[hdr.PageSize-1] ^= 0xff
		var out bytes.Buffer
		err := encodeLTX(&out, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
			for _, p := range pages {
				if err := enc.EncodePage(ltx.PageHeader{Pgno: p.pgno}, p.data); err != nil {
					return 0, err
				}
			}
			return dec.Trailer().PostApplyChecksum, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
}

// snapshotJob returns db's scheduled snapshot job.
func snapshotJob(t *testing.T, dm *dbMaint) *job {
	t.Helper()
	for _, j := range dm.jobs() {
		if j.kind == errKindSnapshot {
			return &j
		}
	}
	t.Fatal("no snapshot job")
	return nil
}

// The bug that motivated self-repair: the scheduled snapshot, rebuilt from
// the replica, does not match the checksum the replica records (or an
// object it needs is gone). The job used to fail and retry forever; now it
// writes a new snapshot from the local database at once, says so once, and
// the latest point restores to the live database.
func TestMaintenanceRepairsInconsistentReplica(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, r *Replicator, st *memstore.Store, snap s3backend.FileInfo)
		want   string // in the recorded reason
	}{
		{"level-0 file does not match its checksum", func(t *testing.T, r *Replicator, st *memstore.Store, _ s3backend.FileInfo) {
			// Written so by walfs (the compaction cache holds the same bytes):
			// only the rebuilt image shows it.
			newest := newestFile(t, st)
			rewrite(t, st, newest, changePageKeepChecksum(t))
			f := r.maint.cache.open(newest)
			if f == nil {
				t.Fatal("newest level-0 file not in the compaction cache")
			}
			f.Close()
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.Name(), changePageKeepChecksum(t)(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "rebuilt database at TXID"},
		{"snapshot damaged", func(t *testing.T, _ *Replicator, st *memstore.Store, snap s3backend.FileInfo) {
			rewrite(t, st, snap, changePageKeepChecksum(t))
		}, "damaged object"},
		{"snapshot object gone", func(t *testing.T, _ *Replicator, st *memstore.Store, snap s3backend.FileInfo) {
			if err := st.Delete(t.Context(), []s3backend.FileInfo{snap}); err != nil {
				t.Fatal(err)
			}
		}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := memstore.New()
			// Due whenever a level-0 file follows the newest snapshot.
			r, db := liveReplicator(t, inner, MaintenanceOptions{SnapshotInterval: -1, SnapshotFactor: 1e-9, Retention: -1})
			for i := range 5 {
				commitAndFlush(t, r, db, "insert into t(v) values('row "+string(rune('a'+i))+"')")
			}
			snaps, err := inner.List(t.Context(), "app.db", s3backend.LevelSnapshot)
			if err != nil || len(snaps) != 1 {
				t.Fatalf("snapshots %v (%v), want 1", snaps, err)
			}
			tc.damage(t, r, inner, snaps[0])
			before := r.lookup("app.db").up.uploadedTXID()

			dm := r.maint.lookup("app.db")
			j := snapshotJob(t, dm)
			dm.runJob(t.Context(), j, time.Now())
			if j.fails != 0 || j.repairs != 1 {
				t.Fatalf("after the job: %d failures, %d repairs; want 0, 1 (last error %v)", j.fails, j.repairs, dm.lastErr)
			}
			st := r.Status()[0]
			if st.Repairs != 1 || st.LastRepair == nil || st.LastRepair.TXID != before+1 || !strings.Contains(st.LastRepair.Why, tc.want) {
				t.Fatalf("status: %d repairs, last %+v; want 1 at TXID %d naming %q", st.Repairs, st.LastRepair, before+1, tc.want)
			}
			if got := newestFile(t, inner); got.Level != s3backend.LevelSnapshot || got.MaxTXID != before+1 {
				t.Fatalf("newest object %s, want the repairing snapshot at TXID %d", s3backend.Key(got), before+1)
			}
			requireRestoreMatches(t, inner, "app.db", db, "select group_concat(v, ',') from (select v from t order by id)")

			// The repaired replica needs nothing more: the job is not due,
			// and after new commits it builds its snapshot on the repair.
			dm.runJob(t.Context(), j, time.Now())
			commitAndFlush(t, r, db, "insert into t(v) values('after the repair')")
			dm.runJob(t.Context(), j, time.Now())
			if j.fails != 0 || j.repairs != 0 || dm.repairs != 1 {
				t.Fatalf("after the repair: %d failures, %d repairs in a row, %d repairs; want 0, 0, 1 (last error %v)", j.fails, j.repairs, dm.repairs, dm.lastErr)
			}
			if got := newestFile(t, inner); got.Level != s3backend.LevelSnapshot || got.MaxTXID != before+2 {
				t.Fatalf("newest object %s, want a scheduled snapshot at TXID %d", s3backend.Key(got), before+2)
			}
			requireRestoreMatches(t, inner, "app.db", db, "select group_concat(v, ',') from (select v from t order by id)")
		})
	}
}

// A job never retries the same failing step forever: a replica that a
// repair does not fix stops being repaired after maxRepairsInARow, a job
// that keeps failing is parked after maxAttempts and says why in status, and
// a parked job sends no request until the replica changes.
func TestMaintenanceGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name        string
		repair      func(n int) (uint64, error)
		wantRepairs uint64
		wantErr     string
	}{
		{"repair fails", func(int) (uint64, error) { return 0, errors.New("disk full") }, 0, "disk full"},
		{"repair does not help", func(n int) (uint64, error) { return uint64(1000 + n), nil }, maxRepairsInARow, "not repairing again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, memstore.New(), MaintenanceOptions{SnapshotInterval: -1, SnapshotFactor: 1e-9, Retention: -1})
			m := newModel(t, "app.db", 10, 3)
			m.snapshot(g.store(), g.now())
			m.batch(g.store(), g.now(), 2)
			m.sums.xor ^= 1 // the next file's pre-apply checksum does not chain
			m.batch(g.store(), g.now(), 2)
			repairs := 0
			g.dm.snapshotLocal = func(context.Context) (uint64, error) {
				repairs++
				return tc.repair(repairs)
			}
			runs := 0
			j := snapshotJob(t, g.dm)
			run := j.run
			j.run = func(ctx context.Context, now time.Time) error { runs++; return run(ctx, now) }

			for range maxAttempts + maxRepairsInARow {
				g.dm.runJob(t.Context(), j, g.now())
			}
			if g.dm.repairs != tc.wantRepairs {
				t.Errorf("repairs %d, want %d", g.dm.repairs, tc.wantRepairs)
			}
			if !j.parked || runs != j.fails+int(g.dm.repairs) {
				t.Fatalf("parked %v after %d runs, %d failures", j.parked, runs, j.fails)
			}
			stuck := g.dm.stuck["snapshot"]
			if !strings.Contains(stuck, "failed 6 times in a row") || !strings.Contains(stuck, tc.wantErr) {
				t.Errorf("stuck reason %q, want it to say 6 failures and %q", stuck, tc.wantErr)
			}
			before := g.calls()
			for range 10 {
				g.dm.runJob(t.Context(), j, g.now())
			}
			if d := diff(g.calls(), before); len(d) > 0 || runs != j.fails+int(g.dm.repairs) {
				t.Fatalf("parked job ran again (%d runs, requests %v)", runs, d)
			}
			// A new upload changes the replica: one more try, then parked again.
			m.batch(g.store(), g.now(), 1)
			n := runs
			g.dm.runJob(t.Context(), j, g.now())
			g.dm.runJob(t.Context(), j, g.now())
			if runs != n+1 || !j.parked {
				t.Fatalf("after an upload: %d more runs, parked %v; want 1 and parked", runs-n, j.parked)
			}
		})
	}
}

// What verify compares: a clean replica equals the live database; each kind
// of damage is named, repaired with a new snapshot, and the next comparison
// is equal again.
func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, r *Replicator, st *memstore.Store)
		want   string
	}{
		{"newest object removed", func(t *testing.T, _ *Replicator, st *memstore.Store) {
			if err := st.Delete(t.Context(), []s3backend.FileInfo{newestFile(t, st)}); err != nil {
				t.Fatal(err)
			}
		}, "objects are missing"},
		{"trailer checksum of the newest object changed", func(t *testing.T, _ *Replicator, st *memstore.Store) {
			rewrite(t, st, newestFile(t, st), func(b []byte) []byte {
				b[len(b)-ltx.TrailerSize+3] ^= 0x10
				return b
			})
		}, "the live database has checksum"},
		{"newest object cut short", func(t *testing.T, _ *Replicator, st *memstore.Store) {
			rewrite(t, st, newestFile(t, st), func(b []byte) []byte { return b[:ltx.HeaderSize] })
		}, "too small"},
		{"capture lost track of a page", func(t *testing.T, r *Replicator, _ *memstore.Store) {
			d := r.lookup("app.db")
			d.mu.Lock()
			d.sums.xor ^= 1
			d.mu.Unlock()
		}, "next transactions would not chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := memstore.New()
			r, db := liveReplicator(t, inner, MaintenanceOptions{Disabled: true})
			for i := range 3 {
				commitAndFlush(t, r, db, "insert into t(v) values('row "+string(rune('a'+i))+"')")
			}
			if _, err := db.Exec("insert into t(v) values('not flushed yet')"); err != nil {
				t.Fatal(err)
			}
			cs := r.Compare(t.Context(), false)
			if len(cs) != 1 || !cs[0].Equal() {
				t.Fatalf("clean replica: %+v, want equal", cs)
			}
			c := cs[0]
			if c.TXID != r.lookup("app.db").up.uploadedTXID() || c.Live != c.Replica || c.Live != c.Captured || c.Files < 2 {
				t.Fatalf("clean replica: %+v; want TXID %d (everything uploaded) and one checksum", c, r.lookup("app.db").up.uploadedTXID())
			}

			tc.damage(t, r, inner)
			c = r.Compare(t.Context(), false)[0]
			if c.Equal() || !strings.Contains(c.Difference, tc.want) || c.RepairTXID != 0 {
				t.Fatalf("damaged, no repair: %+v; want a difference naming %q", c, tc.want)
			}
			c = r.Compare(t.Context(), true)[0]
			if c.Equal() || c.RepairTXID != c.TXID+1 || c.RepairErr != "" {
				t.Fatalf("damaged, repair: %+v; want a difference repaired at TXID %d", c, c.TXID+1)
			}
			repaired := c.RepairTXID
			if st := r.Status()[0]; st.Repairs != 1 || st.LastRepair.TXID != repaired {
				t.Errorf("status: %d repairs, last %+v", st.Repairs, st.LastRepair)
			}
			c = r.Compare(t.Context(), true)[0]
			if !c.Equal() || c.TXID != repaired || c.Files != 1 {
				t.Fatalf("after the repair: %+v, want equal at TXID %d from the snapshot alone", c, repaired)
			}
			requireRestoreMatches(t, inner, "app.db", db, "select group_concat(v, ',') from (select v from t order by id)")
		})
	}
}

// A level-0 object gone from the store (and from the compaction cache, as
// after a restart): compaction finds it missing, the repair writes a new
// snapshot, and compaction never asks for what that snapshot covers again.
func TestCompactionSkipsWhatARepairCovers(t *testing.T) {
	inner := memstore.New()
	g := newRig(t, inner, MaintenanceOptions{SnapshotInterval: -1, SnapshotFactor: -1, Retention: -1})
	m := newModel(t, "app.db", 10, 4)
	m.snapshot(g.store(), g.now())
	var l0 []s3backend.FileInfo
	for range 4 {
		l0 = append(l0, m.batch(g.store(), g.now(), 1))
	}
	g.r.maint.cache.drop(l0...)
	if err := inner.Delete(t.Context(), l0[1:2]); err != nil {
		t.Fatal(err)
	}
	g.dm.snapshotLocal = func(context.Context) (uint64, error) {
		m.snapshot(g.store(), g.now()) // what the local database would spool
		return m.txid, nil
	}
	j := &g.dm.jobs()[0] // compaction into level 1
	g.dm.runJob(t.Context(), j, g.now())
	if j.fails != 0 || g.dm.repairs != 1 || g.dm.floor != m.txid {
		t.Fatalf("after the compaction: %d failures, %d repairs, floor %d; want 0, 1, %d (last error %v)", j.fails, g.dm.repairs, g.dm.floor, m.txid, g.dm.lastErr)
	}
	if !strings.Contains(g.dm.lastRepair.why, "not found") {
		t.Errorf("repair reason %q, want the missing object", g.dm.lastRepair.why)
	}
	before := g.calls()
	g.dm.runJob(t.Context(), j, g.now())
	if d := diff(g.calls(), before); len(d) > 0 || j.fails != 0 || j.repairs != 0 {
		t.Fatalf("compaction after the repair: requests %v, %d failures, %d repairs in a row; want none", d, j.fails, j.repairs)
	}
	m.batch(g.store(), g.now(), 1)
	g.dm.runJob(t.Context(), j, g.now())
	l1 := g.r.maint.store.files("app.db", 1)
	if len(l1) != 1 || l1[0].MinTXID != m.txid {
		t.Fatalf("level 1 %v, want only the file after the repair (TXID %d)", keys(l1), m.txid)
	}
	got, _ := restoreAt(t, g.store(), restore.Target{})
	if !bytes.Equal(got, m.image()) {
		t.Fatal("restored latest differs from the model")
	}
}

// CompareDir compares a data dir no Replicator serves with its replica,
// reading the WAL on disk as SQLite would, and names a database whose
// replica differs; it repairs nothing.
func TestCompareDir(t *testing.T) {
	inner := memstore.New()
	r, db := liveReplicator(t, inner, MaintenanceOptions{Disabled: true})
	commitAndFlush(t, r, db, "insert into t(v) values('one')", "insert into t(v) values('two')")
	dataDir := r.opts.DataDir
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "app.db-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("the live connection should keep commits in the WAL: %v", err)
	}
	cs, err := CompareDir(t.Context(), inner, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || !cs[0].Equal() || cs[0].Live != cs[0].Replica || cs[0].TXID == 0 {
		t.Fatalf("clean data dir: %+v, want app.db equal", cs)
	}
	if _, err := db.Exec("insert into t(v) values('after walfs stopped')"); err != nil {
		t.Fatal(err)
	}
	cs, err = CompareDir(t.Context(), inner, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Difference == "" || cs[0].RepairTXID != 0 {
		t.Fatalf("a commit the replica lacks: %+v, want a difference and no repair", cs)
	}
	if snaps, _ := inner.List(t.Context(), "app.db", s3backend.LevelSnapshot); len(snaps) != 1 {
		t.Errorf("CompareDir wrote to the replica: snapshots %v", keys(snaps))
	}
}
