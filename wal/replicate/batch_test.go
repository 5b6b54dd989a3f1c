package replicate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend/memstore"
)

// A passthrough poll writes the records of the transactions it captured in
// one batch. If that write fails (disk full), the capture has passed them
// already: the records must wait in memory and go out with the next flush,
// not be dropped (and not cost a whole-database snapshot, which a full disk
// could not take either).
func TestFailedBatchIsRetried(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "app.db")
	makeWALDatabase(t, path, 5)
	db := openLive(t, path)
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec("pragma wal_autocheckpoint=0")
	exec("insert into t(v) values('before')")

	store := memstore.New()
	r, err := New(Options{DataDir: dataDir, Store: store, Logger: testLogger(t), Capture: CapturePassthrough})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitResumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// What the mount does when SQLite opens the WAL.
	wf, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	if err := r.WALOpen("app.db", wf); err != nil {
		t.Fatal(err)
	}
	flush := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		return r.Flush(ctx)
	}
	exec("insert into t(v) values('spooled')")
	if err := flush(); err != nil {
		t.Fatal(err)
	}

	// One more commit opens a segment; then its descriptor stops taking
	// writes.
	d := r.lookup("app.db")
	d.mu.Lock()
	exec("insert into t(v) values('spooled 2')")
	if err := d.poll(); err != nil {
		d.mu.Unlock()
		t.Fatal(err)
	}
	exec("insert into t(v) values('held 1')")
	exec("insert into t(v) values('held 2')")
	d.spool.mu.Lock()
	if d.spool.seg == nil {
		d.spool.mu.Unlock()
		d.mu.Unlock()
		t.Fatal("no open segment after a commit")
	}
	ro, err := os.Open(d.spool.seg.Name())
	if err != nil {
		t.Fatal(err)
	}
	good := d.spool.seg
	d.spool.seg = ro
	d.spool.mu.Unlock()
	err = d.poll()
	d.spool.mu.Lock()
	if d.spool.seg == ro {
		d.spool.seg = good
	}
	ro.Close()
	d.spool.mu.Unlock()
	d.mu.Unlock()
	if err == nil {
		t.Fatal("poll with an unwritable spool segment succeeded")
	}
	d.mu.Lock()
	err = d.syncSpool()
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("sync once the segment takes writes again: %v", err)
	}

	exec("insert into t(v) values('after')")
	if err := flush(); err != nil {
		t.Fatalf("flush after the lost batch: %v", err)
	}
	snaps, err := store.List(t.Context(), "app.db", 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 {
		t.Fatalf("level 9 holds %v, want only the first snapshot", snaps)
	}
	requireRestoreMatches(t, store, "app.db", db, "select group_concat(v, ',') from (select v from t order by id)")
}
