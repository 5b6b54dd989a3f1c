package replicate

import (
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend/memstore"
)

// done fails the test unless fn returns within a generous bound: a
// deadlock detector, not a timing assertion.
func done(t *testing.T, what string, fn func()) {
	t.Helper()
	ch := make(chan struct{})
	go func() { defer close(ch); fn() }()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still waits after 30s", what)
	}
}

// Opening a database lists the store (resume). While one database's
// listing hangs, other databases' requests and Status go on, and a second
// request for the same database waits for the first open instead of
// starting another.
func TestOpenDoesNotBlockOtherDatabases(t *testing.T) {
	dataDir := t.TempDir()
	makeWALDatabase(t, filepath.Join(dataDir, "fast.db"), 3)
	faulty := memstore.Wrap(memstore.New())
	r, err := New(Options{DataDir: dataDir, Store: faulty, Logger: testLogger(t), Maintenance: MaintenanceOptions{Disabled: true}})
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

	makeWALDatabase(t, filepath.Join(dataDir, "slow.db"), 3) // after Start: opened by its first request
	listing, unblock := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(unblock) })
	defer release() // also when the test fails: Close waits for the open
	remove := faulty.Inject(memstore.Fault{
		Op: memstore.OpList, Times: 1,
		Match: func(c memstore.Call) bool { return c.DB == "slow.db" },
		Then:  func(memstore.Call) { close(listing); <-unblock },
	})
	defer remove()
	type got struct {
		d   *DB
		err error
	}
	first, second := make(chan got, 1), make(chan got, 1)
	go func() { d, err := r.get("slow.db"); first <- got{d, err} }()
	<-listing
	go func() { d, err := r.get("slow.db"); second <- got{d, err} }()

	done(t, "Status while another database opens", func() {
		if st := r.Status(); len(st) != 1 || st[0].DB != "fast.db" {
			t.Errorf("status %+v, want fast.db alone", st)
		}
	})
	done(t, "a request for another database while one opens", func() {
		if err := r.WALSync("fast.db"); err != nil {
			t.Error(err)
		}
		if err := r.JournalEnd("fast.db"); err != nil {
			t.Error(err)
		}
	})
	release()
	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatalf("open slow.db: %v, %v", a.err, b.err)
	}
	if a.d != b.d {
		t.Error("two requests for one database opened it twice")
	}
	if st := r.Status(); len(st) != 2 {
		t.Errorf("status %+v, want both databases", st)
	}
}

// Close returns only once every goroutine the Replicator started has
// returned: the scheduler's workers (uploads, maintenance), the background
// resume, the reconciler and the inotify watcher.
func TestCloseJoinsGoroutines(t *testing.T) {
	dataDir := t.TempDir()
	makeWALDatabase(t, filepath.Join(dataDir, "app.db"), 3)
	r, err := New(Options{DataDir: dataDir, Store: memstore.New(), Logger: testLogger(t), Capture: CapturePassthrough})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() }) // if the test fails early; Close is idempotent
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitResumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	loops := []string{"(*watcher).run", "(*Replicator).reconcileLoop"} // always running
	all := append(loops, "(*sched).work", "(*Replicator).resumeAll")
	running := func() []string {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var out []string
		for _, l := range loops {
			if strings.Contains(stacks, "replicate."+l) {
				out = append(out, l)
			}
		}
		return out
	}
	// Started goroutines may not have entered their loops yet.
	for deadline := time.Now().Add(30 * time.Second); len(running()) < len(loops); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("running before Close: %v, want all of %v", running(), loops)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	loops = all
	if got := running(); len(got) > 0 {
		t.Errorf("still running after Close: %v", got)
	}
}
