package replicate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend/memstore"
)

// A quiet database costs no goroutine and no timer: once many databases are
// resumed and uploaded, the Replicator runs a number of goroutines that does
// not depend on how many it tracks, and no upload waits in the scheduler.
func TestQuietDatabasesHoldNoGoroutines(t *testing.T) {
	const n = 300
	dataDir := t.TempDir()
	for i := range n {
		makeWALDatabase(t, filepath.Join(dataDir, fmt.Sprintf("t%04d.db", i)), 1)
	}
	base := runtime.NumGoroutine()
	r, err := New(Options{DataDir: dataDir, Store: memstore.New(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Status()); got != n {
		t.Fatalf("status shows %d databases, want %d", got, n)
	}
	// The reconciler, and workers finishing their last steps: a constant.
	const most = 8
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if runtime.NumGoroutine()-base <= most && r.uploads.queued() == 0 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines above the %d before New with %d quiet databases (want at most %d), %d uploads queued:\n%s",
				runtime.NumGoroutine()-base, base, n, most, r.uploads.queued(), buf[:runtime.Stack(buf, true)])
		}
	}
}

// Start returns before the databases it found are resumed; a request for
// one of them that the background has not reached resumes it at once, in
// its own goroutine, and what it then commits reaches the replica intact.
func TestRequestResumesAheadOfStart(t *testing.T) {
	dataDir := t.TempDir()
	blocked := []string{"a.db", "b.db", "c.db", "d.db"} // one per background worker
	for _, name := range append(blocked, "z.db") {
		makeWALDatabase(t, filepath.Join(dataDir, name), 3)
	}
	path := filepath.Join(dataDir, "z.db")
	live := openLive(t, path)
	if _, err := live.Exec("pragma wal_autocheckpoint=0"); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := live.QueryRow("select count(*) from t").Scan(&rows); err != nil { // opens the WAL
		t.Fatal(err)
	}
	faulty := memstore.Wrap(memstore.New())
	unblock := make(chan struct{})
	release := sync.OnceFunc(func() { close(unblock) })
	defer release()
	isBlocked := map[string]bool{}
	for _, b := range blocked {
		isBlocked[b] = true
	}
	remove := faulty.Inject(memstore.Fault{
		Op: memstore.OpList, Match: func(c memstore.Call) bool { return isBlocked[c.DB] },
		Then: func(memstore.Call) { <-unblock },
	})
	defer remove()
	r, err := New(Options{DataDir: dataDir, Store: faulty, Logger: testLogger(t), Capture: CapturePassthrough, Maintenance: MaintenanceOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	done(t, "a request for a database the background resume has not reached", func() {
		wf, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer wf.Close()
		if err := r.WALOpen("z.db", wf); err != nil { // what the mount does when SQLite opens the WAL
			t.Error(err)
			return
		}
		if _, err := live.Exec("insert into t(v) values('after start')"); err != nil {
			t.Error(err)
			return
		}
		if err := r.DBSync("z.db"); err != nil { // a checkpoint's fsync: the capture catches up
			t.Error(err)
		}
	})
	if r.lookup("a.db") != nil {
		t.Fatal("a.db resumed while its listing is blocked")
	}
	if d := r.lookup("z.db"); d == nil || d.up.Status().Last < 2 {
		t.Fatalf("z.db: want its snapshot and the commit after it spooled")
	}
	release()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Status()); got != 5 {
		t.Errorf("status shows %d databases after the resume, want 5", got)
	}
	requireRestoreMatches(t, r.opts.Store, "z.db", live, "select group_concat(v, ',') from t")
}
