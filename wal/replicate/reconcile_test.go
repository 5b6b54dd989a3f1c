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

// fakeLocks is a mount's lock table with one writer (why) or none.
type fakeLocks struct{ why string }

func (l fakeLocks) Quiet(string) (bool, string) { return l.why == "", l.why }

func (l fakeLocks) HoldWAL(string) (func(), bool, string) { return func() {}, false, "" }
