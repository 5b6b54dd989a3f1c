package replicate

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/restore"
)

// queueRig is a Replicator capturing one WAL database ("app.db") that
// uploads only when flushed: the sync interval is an hour, so everything
// spooled between two flushes is pending at the second one.
type queueRig struct {
	t     *testing.T
	r     *Replicator
	d     *DB
	live  *sql.DB
	path  string
	store *memstore.Store
	down  *memstore.Faulty // between the counter and store: fails uploads on demand
	count *instrument.Counter
}

func newQueueRig(t *testing.T) *queueRig { return newQueueRigWith(t, nil) }

// newQueueRigWith is newQueueRig with opts changed by with before New.
func newQueueRigWith(t *testing.T, with func(*Options)) *queueRig {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "app.db")
	makeWALDatabase(t, path, 3)
	live := openLive(t, path)
	g := &queueRig{t: t, live: live, path: path, store: memstore.New(), count: instrument.NewCounter()}
	g.down = memstore.Wrap(g.store)
	g.exec("pragma wal_autocheckpoint=0")
	g.exec("insert into t(v) values('before')")
	opts := Options{
		DataDir: dataDir, Store: instrument.Wrap(g.down, g.count), Logger: testLogger(t),
		Capture: CapturePassthrough, SyncInterval: time.Hour, Maintenance: MaintenanceOptions{Disabled: true},
	}
	if with != nil {
		with(&opts)
	}
	r, err := New(opts)
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
	g.r, g.d = r, r.lookup("app.db")
	// What the mount does when SQLite opens the WAL.
	wf, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	if err := r.WALOpen("app.db", wf); err != nil {
		t.Fatal(err)
	}
	g.flush()
	return g
}

func (g *queueRig) exec(q string) {
	g.t.Helper()
	if _, err := g.live.Exec(q); err != nil {
		g.t.Fatal(err)
	}
}

// commit runs one transaction and captures it, as the mount's poll would.
func (g *queueRig) commit(v string) {
	g.t.Helper()
	g.exec("insert into t(v) values('" + v + "')")
	g.d.mu.Lock()
	err := g.d.poll()
	g.d.mu.Unlock()
	if err != nil {
		g.t.Fatal(err)
	}
}

// snapshot spools a snapshot, as a lineage repair would, and returns its TXID.
func (g *queueRig) snapshot() uint64 {
	g.t.Helper()
	txid, err := g.d.snapshotNow()
	if err != nil || txid == 0 {
		g.t.Fatalf("snapshot: txid %d, %v", txid, err)
	}
	return txid
}

// rotate closes the open spool segment, so the next commit opens another.
func (g *queueRig) rotate() {
	g.t.Helper()
	if _, err := g.d.spool.closeSegment(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *queueRig) flush() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.t.Context(), 30*time.Second)
	defer cancel()
	if err := g.r.Flush(ctx); err != nil {
		g.t.Fatal(err)
	}
}

func (g *queueRig) puts() uint64 { return g.count.Ops()[instrument.OpPut].Calls }

// files returns the keys of a level of the replica.
func (g *queueRig) files(level int) []string {
	g.t.Helper()
	infos, err := g.store.List(g.t.Context(), "app.db", level)
	if err != nil {
		g.t.Fatal(err)
	}
	return keys(infos)
}

// requireDrained fails unless the spool is empty and status shows the
// replica at local TXID want.
func (g *queueRig) requireDrained(want uint64) {
	g.t.Helper()
	if entries, err := g.d.spool.list(); err != nil || len(entries) != 0 {
		g.t.Errorf("spool holds %v (%v), want nothing", entries, err)
	}

	st := g.r.Status()
	if len(st) != 1 || st[0].LocalTXID != want || st[0].ReplicatedTXID != want || st[0].Lag != 0 || st[0].SpoolBytes != 0 {
		g.t.Errorf("status %+v, want local and replicated TXID %d, no lag, empty spool", st, want)
	}
	if p := g.r.Pending(); len(p) != 0 {
		g.t.Errorf("pending %v, want none", p)
	}
}

// asKeys lists files as keys does.
func asKeys(files ...s3backend.FileInfo) []string { return keys(files) }

func lf(level int, minTXID, maxTXID uint64) s3backend.FileInfo {
	return s3backend.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID}
}

const allRows = "select group_concat(v, ',') from (select v from t order by id)"

// A pending snapshot supersedes everything spooled before it: one batch
// uploads the newest snapshot with the transactions after it folded in (one
// snapshot object at the last of them, foldSnapshot), never the older
// records or snapshots, and the replica restores to the latest point and
// keeps chaining from there.
func TestPendingSnapshotSupersedesOlderRecords(t *testing.T) {
	g := newQueueRig(t)
	base := g.d.up.uploadedTXID()
	if base == 0 {
		t.Fatal("nothing uploaded at start")
	}
	g.commit("a1")
	g.commit("a2")
	g.commit("a3")
	s1 := g.snapshot()
	g.commit("b1")
	g.commit("b2")
	s2 := g.snapshot()
	g.commit("c1")
	g.commit("c2")
	last := s2 + 2
	if s1 != base+4 || s2 != base+7 {
		t.Fatalf("snapshots at %d and %d, want %d and %d", s1, s2, base+4, base+7)
	}

	before := g.puts()
	g.flush()
	if got := g.puts() - before; got != 1 {
		t.Errorf("PUTs for the batch: got %d, want 1 (the newest snapshot with the transactions after it)", got)
	}
	if got, want := g.files(s3backend.LevelSnapshot), asKeys(lf(9, 1, base), lf(9, 1, last)); !slices.Equal(got, want) {
		t.Errorf("level 9: got %v, want %v (the superseded snapshot at %d never uploaded, the one at %d folded up to %d)", got, want, s1, s2, last)
	}
	if got := g.files(s3backend.LevelL0); len(got) != 0 {
		t.Errorf("level 0: got %v, want nothing", got)
	}
	g.requireDrained(last)
	requireRestoreMatches(t, g.store, "app.db", g.live, allRows)

	// Later batches chain from the snapshot: TXIDs stay contiguous.
	g.commit("d1")
	g.flush()
	if got, want := g.files(s3backend.LevelL0), asKeys(lf(0, last+1, last+1)); !slices.Equal(got, want) {
		t.Errorf("level 0 after one more batch: got %v, want %v", got, want)
	}
	g.requireDrained(last + 1)
	requireRestoreMatches(t, g.store, "app.db", g.live, allRows)
}

// A batch takes everything pending whatever its shape: transactions spread
// over several closed segments go up as one level-0 file.
func TestBatchTakesEveryPendingSegment(t *testing.T) {
	g := newQueueRig(t)
	base := g.d.up.uploadedTXID()
	for i, v := range []string{"a", "b", "c", "d", "e", "f"} {
		g.commit(v)
		if i%2 == 1 {
			g.rotate()
		}
	}
	if entries, _ := g.d.spool.list(); len(entries) != 3 {
		t.Fatalf("spool holds %d files, want 3 segments", len(entries))
	}
	before := g.puts()
	g.flush()
	if got := g.puts() - before; got != 1 {
		t.Errorf("PUTs for the batch: got %d, want 1", got)
	}
	if got, want := g.files(s3backend.LevelL0), asKeys(lf(0, base+1, base+6)); !slices.Equal(got, want) {
		t.Errorf("level 0: got %v, want %v", got, want)
	}
	g.requireDrained(base + 6)
	requireRestoreMatches(t, g.store, "app.db", g.live, allRows)
}

// A deleted database's pending uploads are dropped with their spool files:
// nothing is uploaded for it, status shows nothing pending, and the replica
// keeps what it held, restorable at its latest point. A database created at
// the same path starts with a snapshot at a TXID never used before.
func TestDeletedDatabaseDropsPendingUploads(t *testing.T) {
	g := newQueueRig(t)
	g.commit("kept")
	g.flush()
	uploaded := g.d.up.uploadedTXID()
	var want string
	if err := g.live.QueryRow(allRows).Scan(&want); err != nil {
		t.Fatal(err)
	}
	g.commit("lost 1")
	g.commit("lost 2")
	g.snapshot()
	g.commit("lost 3")
	dropped := uploaded + 4
	if st := g.r.Status(); st[0].LocalTXID != dropped {
		t.Fatalf("local TXID %d, want %d", st[0].LocalTXID, dropped)
	}

	// What the mount sees: the app deletes the database and its WAL.
	g.live.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(g.path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		g.r.Removed("app.db" + suffix)
	}
	before := g.puts()
	g.flush()
	if got := g.puts() - before; got != 0 {
		t.Errorf("PUTs after the delete: got %d, want 0", got)
	}
	g.requireDrained(uploaded)
	restored := filepath.Join(t.TempDir(), "restored.db")
	if _, err := restore.Restore(t.Context(), g.store, "app.db", restored, restore.Options{IntegrityCheck: restore.IntegrityNone}); err != nil {
		t.Fatalf("restore the deleted database's replica: %v", err)
	}
	var got string
	if err := openLive(t, restored).QueryRow(allRows).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("replica of the deleted database restores %q, want %q (its last upload)", got, want)
	}

	makeWALDatabase(t, g.path, 2)
	if txid := g.snapshot(); txid <= dropped {
		t.Fatalf("new database's snapshot at TXID %d, want after the dropped %d", txid, dropped)
	}
	g.flush()
	g.requireDrained(dropped + 1)
	requireRestoreMatches(t, g.store, "app.db", openLive(t, g.path), allRows)
}

// A queue that cannot drain says why and since when, and forgets it once
// uploads succeed again.
func TestUploadFailuresShowSinceWhen(t *testing.T) {
	g := newQueueRig(t)
	up := g.down.Inject(memstore.Fault{Op: memstore.OpWrite, Err: s3backend.ErrUnreachable})
	g.commit("stuck")
	start := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	flushed := make(chan error, 1)
	go func() { flushed <- g.r.Flush(ctx) }()
	deadline := time.After(30 * time.Second)
	var st DBStatus
	for {
		progress := g.d.up.changed() // closed by every upload attempt
		if st = g.r.Status()[0]; st.UploadFailures >= 1 {
			break
		}
		select {
		case <-progress:
		case <-deadline:
			t.Fatalf("no failed upload in status after 30s: %+v", st)
		}
	}
	cancel()
	var pe *PendingError
	if err := <-flushed; !errors.As(err, &pe) || len(pe.Pending) != 1 || pe.Pending[0].LastError == nil {
		t.Errorf("flush while the store is down: %v, want a PendingError naming the upload error", err)
	}
	if st.UploadFailingSince.Before(start) || st.UploadFailingSince.After(time.Now()) || !strings.Contains(st.UploadError, "unreachable") {
		t.Errorf("status while failing: since %v (test started %v), error %q", st.UploadFailingSince, start, st.UploadError)
	}
	if st.LocalTXID <= st.ReplicatedTXID {
		t.Errorf("status while failing: local %d, replicated %d, want a backlog", st.LocalTXID, st.ReplicatedTXID)
	}

	up()
	g.flush()
	st = g.r.Status()[0]
	if !st.UploadFailingSince.IsZero() || st.UploadFailures != 0 || st.UploadError != "" {
		t.Errorf("status after recovery: since %v, %d failures, error %q; want all clear", st.UploadFailingSince, st.UploadFailures, st.UploadError)
	}
	g.requireDrained(st.LocalTXID)
}

// The uploader's own rounds do not sync the spool (only a flush, a sync
// commit or unmount do): the files it uploads and removes leave the list of
// unsynced spool files, so a database that went quiet after its upload
// keeps none of their names.
func TestUploadLeavesNothingUnsynced(t *testing.T) {
	g := newQueueRig(t)
	g.snapshot()
	g.commit("a1")
	g.rotate()
	g.commit("a2")
	g.d.spool.mu.Lock()
	before := len(g.d.spool.unsynced)
	g.d.spool.mu.Unlock()
	if before == 0 {
		t.Fatal("nothing listed as unsynced before the upload")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := g.d.up.uploadThrough(ctx, g.d.up.Status().Last); err != nil {
		t.Fatal(err)
	}
	g.d.spool.mu.Lock()
	left := slices.Clone(g.d.spool.unsynced)
	g.d.spool.mu.Unlock()
	if len(left) != 0 {
		t.Fatalf("after the upload %v are listed as unsynced (%d before), want none", left, before)
	}
}
