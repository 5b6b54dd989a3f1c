package replicate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal"
)

func TestWritesGrowth(t *testing.T) {
	txn := func(commit uint32, pages ...uint32) *wal.Txn {
		x := &wal.Txn{PageSize: 4096, Commit: commit}
		for _, p := range pages {
			x.Pages = append(x.Pages, wal.PageRef{Pgno: p})
		}
		return x
	}
	for _, tc := range []struct {
		name string
		txn  *wal.Txn
		size uint32
		want bool
	}{
		{"no growth", txn(10, 3), 10, true},
		{"shrinks", txn(8, 3), 10, true},
		{"writes every new page", txn(12, 3, 11, 12), 10, true},
		{"skips a new page", txn(12, 3, 12), 10, false},
		{"new page written twice, one missing", txn(12, 11, 11), 10, false},
		// The lock page (262145 with 4 KiB pages) is never written.
		{"growth over the lock page", txn(262146, 262144, 262146), 262143, true},
	} {
		if got := writesGrowth(tc.txn, tc.size); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A database replaced behind SQLite's back (a file renamed over it, as cp or
// rsync would leave it) reaches the replica once reconciled, and a
// reconcile of an unchanged database writes nothing.
func TestReconcileOutsideWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dataDir := t.TempDir()
		makeWALDatabase(t, filepath.Join(dataDir, "app.db"), 3)
		store := memstore.New()
		r, _ := startReplicator(t, dataDir, store)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()

		d := r.lookup("app.db")
		before := d.txid
		r.Suspect("app.db", "test: nothing changed")
		if busy := r.Reconcile(ctx); len(busy) != 0 {
			t.Fatalf("busy: %v", busy)
		}
		if d.txid != before {
			t.Fatalf("an unchanged database was snapshotted (TXID %d -> %d)", before, d.txid)
		}

		other := filepath.Join(t.TempDir(), "other.db")
		makeWALDatabase(t, other, 40)
		if err := os.Rename(other, filepath.Join(dataDir, "app.db")); err != nil {
			t.Fatal(err)
		}
		r.Removed("app.db")
		r.Suspect("app.db", "test: renamed over")
		// Not quiet: a writer holds it. Nothing happens, and it stays reported.
		r.SetLocks(fakeLocks{why: "test writer"})
		if busy := r.Reconcile(ctx); len(busy) != 1 {
			t.Fatalf("busy = %v, want app.db", busy)
		}
		r.SetLocks(fakeLocks{})
		if busy := r.Reconcile(ctx); len(busy) != 0 {
			t.Fatalf("busy: %v", busy)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		requireRestoreMatches(t, store, "app.db", openLive(t, filepath.Join(dataDir, "app.db")), "select count(*) || ':' || group_concat(v) from t")
	})
}

// fakeLocks is a mount's lock table with one writer (why) or none; shm
// says HoldWAL found a -shm to hold.
type fakeLocks struct {
	why string
	shm bool
}

func (l fakeLocks) Quiet(string) (bool, string) { return l.why == "", l.why }

func (l fakeLocks) HoldWAL(string) (func(), bool, string) { return func() {}, l.shm, "" }

// In userspace mode a commit SQLite is writing through the mount is in the
// WAL file before its WALWrite reports it, and that call waits for the
// capture lock a reconcile holds. The reconcile must leave those frames to
// WALWrite (which, with --durability sync, waits for the store before
// SQLite may call the transaction committed) rather than reload the WAL past
// them: while the writer holds the WAL write lock it is not done, and the
// commit is captured as a transaction of its own, with no snapshot.
func TestReconcileLeavesUserspaceWritesToWALWrite(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "app.db")
	makeWALDatabase(t, path, 3)
	live := openLive(t, path)
	for _, q := range []string{"pragma wal_autocheckpoint=0", "insert into t(v) values('before')"} {
		if _, err := live.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r := startCapture(t, dataDir, CaptureUserspace)
	wf := openWAL(t, r, path)
	// report is the WALWrite of everything written to the WAL so far.
	report := func() {
		t.Helper()
		fi, err := wf.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WALWrite("app.db", wf, 0, int(fi.Size())); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := live.Exec("insert into t(v) values('reported')"); err != nil {
		t.Fatal(err)
	}
	report()
	d := r.lookup("app.db")
	before := d.up.Status().Last
	// A commit in the file whose WALWrite has not come yet; its writer
	// holds the WAL write lock.
	if _, err := live.Exec("insert into t(v) values('in flight')"); err != nil {
		t.Fatal(err)
	}
	r.Suspect("app.db", "test: created")
	r.SetLocks(fakeLocks{why: "process 1 holds a write lock on the WAL", shm: true})
	if busy := r.Reconcile(t.Context()); len(busy) != 1 {
		t.Fatalf("reconciled while a write through the mount was unreported (still reported: %v)", busy)
	}
	if got := d.up.Status().Last; got != before {
		t.Fatalf("the reconcile spooled TXID %d over %d while the write was unreported", got, before)
	}
	report()
	if got := d.up.Status().Last; got != before+1 {
		t.Fatalf("after its WALWrite the last TXID is %d, want %d: the commit was not captured as its own transaction", got, before+1)
	}
	r.SetLocks(fakeLocks{shm: true})
	if busy := r.Reconcile(t.Context()); len(busy) != 0 {
		t.Fatalf("still reported once the writer let go: %v", busy)
	}
	if st := r.Status(); len(st) != 1 || st[0].OutsideChecks != 1 || st[0].OutsideSnaps != 0 {
		t.Fatalf("status %+v: want one reconcile and no snapshot", st)
	}
}
