package replicate

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend/memstore"
)

// startCapture starts a Replicator over dataDir with the capture path mode,
// a memory store and no maintenance, closed at the end of the test.
func startCapture(t *testing.T, dataDir string, mode CaptureMode) *Replicator {
	t.Helper()
	r, err := New(Options{DataDir: dataDir, Store: memstore.New(), Logger: testLogger(t),
		Capture: mode, Maintenance: MaintenanceOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.WaitResumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

// openWAL opens the WAL of the database at path (a file of the data dir
// named by its base name) as the mount would, and reports the open.
func openWAL(t *testing.T, r *Replicator, path string) *os.File {
	t.Helper()
	wf, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wf.Close() })
	if err := r.WALOpen(filepath.Base(path), wf); err != nil {
		t.Fatal(err)
	}
	return wf
}

// A watcher's poll that leaves an open tail unread (wal/tail.go) is followed
// by a full poll once writes stop. The case it is for: a transaction that
// spilled into the WAL is rolled back, the next commit is written over its
// first frames, and the poll reads the wal-index header before SQLite wrote
// that commit into it (here: a copy of the wal-index from before the
// commit). The file's last frame is then the rolled-back transaction's, and
// the poll cannot see the commit; the full poll after it must.
func TestSkippedTailPolledInFull(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "app.db")
	makeWALDatabase(t, path, 3)
	live := openLive(t, path)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := live.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("pragma wal_autocheckpoint=0")
	exec("pragma cache_size=5")
	r := startCapture(t, dataDir, CapturePassthrough)
	d := r.lookup("app.db")
	d.mu.Lock()
	d.env.watch = nil // only the test's polls and the recheck
	d.mu.Unlock()
	openWAL(t, r, path)
	woken := func() {
		t.Helper()
		if err := d.pollWoken(); err != nil {
			t.Fatal(err)
		}
	}
	exec("insert into t(v) values('before')")
	woken()
	exec("begin")
	for range 200 {
		exec("insert into t(v) values(randomblob(3000))")
		woken()
	}
	exec("rollback")
	shm, err := os.ReadFile(path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(t.TempDir(), "stale-shm")
	if err := os.WriteFile(stale, shm, 0o600); err != nil {
		t.Fatal(err)
	}
	exec("insert into t(v) values('after')")
	sf, err := os.Open(stale)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.shmf.Close() //walfs:ignore-error read only
	d.shmf = sf
	d.mu.Unlock()
	before := d.up.Status().Last
	woken()
	d.mu.Lock()
	skipped, last := d.capture.SkippedTail(), d.up.Status().Last
	d.mu.Unlock()
	if !skipped || last != before {
		t.Fatalf("the poll skipped the tail: %v, captured TXID %d after %d: the test does not reach the case it is for", skipped, last, before)
	}
	for deadline := time.Now().Add(30 * time.Second); d.up.Status().Last == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the commit after the rolled-back transaction was never captured")
		}
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	requireRestoreMatches(t, r.opts.Store, "app.db", live, "select group_concat(v) from t where v in ('before', 'after')")
}
