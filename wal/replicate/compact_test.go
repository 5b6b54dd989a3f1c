package replicate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/restore"
)

// restoreAt restores app.db from st at target and returns the database bytes.
func restoreAt(t testing.TB, st s3backend.Store, target restore.Target) ([]byte, *restore.Plan) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	res, err := restore.Restore(t.Context(), st, "app.db", out, restore.Options{Target: target, IntegrityCheck: restore.IntegrityNone})
	if err != nil {
		t.Fatalf("restore to %s: %v", target, err)
	}
	if !res.Verified {
		t.Fatalf("restore to %s: checksum not verified", target)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, res.Plan
}

func stores() map[string]func(t testing.TB) s3backend.Store {
	return map[string]func(t testing.TB) s3backend.Store{
		"file": func(t testing.TB) s3backend.Store { return s3backend.NewFileStore(t.TempDir()) },
		"mem":  func(t testing.TB) s3backend.Store { return memstore.New() },
	}
}

func TestCompactionBuildsLevels(t *testing.T) {
	for name, newStore := range stores() {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newRig(t, newStore(t), MaintenanceOptions{Retention: -1, SnapshotInterval: -1, SnapshotFactor: -1})
				g.start()
				m := newModel(t, "app.db", 20, 1)
				m.snapshot(g.store(), g.now())
				// One upload every 20s for 2 hours.
				for range 360 {
					g.advance(20 * time.Second)
					m.batch(g.store(), g.now(), 1+int(m.txid%3))
				}
				g.advance(time.Hour) // let every level catch up
				g.requireNoErrors()

				for level := 1; level <= 3; level++ {
					files := g.r.maint.store.files("app.db", level)
					if len(files) == 0 {
						t.Fatalf("level %d is empty", level)
					}
					if got := files[len(files)-1].MaxTXID; got != m.txid {
						t.Errorf("level %d reaches TXID %d, want %d", level, got, m.txid)
					}
					for i := 1; i < len(files); i++ {
						if files[i].MinTXID != files[i-1].MaxTXID+1 {
							t.Errorf("level %d: %s does not follow %s", level, s3backend.Key(files[i]), s3backend.Key(files[i-1]))
						}
					}
				}
				if got := len(g.r.maint.store.files("app.db", 3)); got > 3 {
					t.Errorf("level 3 holds %d files for 3 hours, want at most 3", got)
				}
				// Every compaction input came from the write cache: no downloads.
				if got := g.calls()[instrument.OpGet]; got != 0 {
					t.Errorf("compaction downloaded %d files, want 0 (write cache)", got)
				}
				got, plan := restoreAt(t, g.store(), restore.Target{})
				if !bytes.Equal(got, m.image()) {
					t.Fatalf("restored latest differs from the model")
				}
				if len(plan.Files) > 4 {
					t.Errorf("restore of the latest TXID needs %d files, want at most 4 (snapshot + one level-3 file per hour)", len(plan.Files))
				}
			})
		})
	}
}

// Without the write cache (another process uploaded, or the cache was
// emptied) compaction downloads its inputs, one GET each.
func TestCompactionDownloadsWithoutCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, memstore.New(), MaintenanceOptions{Retention: -1, SnapshotInterval: -1, SnapshotFactor: -1})
		g.start()
		g.r.maint.cache.dir = ""
		m := newModel(t, "app.db", 10, 2)
		m.snapshot(g.store(), g.now())
		for range 5 {
			m.batch(g.store(), g.now(), 1)
		}
		g.advance(30 * time.Second)
		g.requireNoErrors()
		if got := g.calls()[instrument.OpGet]; got != 5 {
			t.Errorf("GETs: got %d, want 5", got)
		}
		l1 := g.r.maint.store.files("app.db", 1)
		if len(l1) != 1 || l1[0].MinTXID != 2 || l1[0].MaxTXID != 6 {
			t.Fatalf("level 1: got %v, want one file 2-6", keys(l1))
		}
	})
}

// A TXID gap (a local snapshot after a lineage break) splits compactions:
// no compacted file spans it, and restores on both sides work.
func TestCompactionSplitsAtLineageBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, memstore.New(), MaintenanceOptions{Retention: -1, SnapshotInterval: -1, SnapshotFactor: -1})
		g.start()
		m := newModel(t, "app.db", 10, 3)
		m.snapshot(g.store(), g.now())
		for range 3 {
			m.batch(g.store(), g.now(), 2)
		}
		before := m.txid
		want := m.image()
		m.snapshot(g.store(), g.now()) // TXID before+1: a new lineage
		for range 3 {
			m.batch(g.store(), g.now(), 2)
		}
		g.advance(30 * time.Second)
		g.requireNoErrors()
		l1 := g.r.maint.store.files("app.db", 1)
		if got := keys(l1); len(got) != 2 || l1[0].MaxTXID != before || l1[1].MinTXID != before+2 {
			t.Fatalf("level 1: got %v, want one file ending at %d and one starting at %d", got, before, before+2)
		}
		got, _ := restoreAt(t, g.store(), restore.Target{TXID: before})
		if !bytes.Equal(got, want) {
			t.Error("restore before the break differs from the model")
		}
		got, _ = restoreAt(t, g.store(), restore.Target{})
		if !bytes.Equal(got, m.image()) {
			t.Error("restore of the latest TXID differs from the model")
		}
	})
}

// A failing compaction is counted, backs off, and catches up when the store
// comes back; nothing is lost.
func TestCompactionRetriesAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memstore.Wrap(memstore.New())
		g := newRig(t, fs, MaintenanceOptions{Retention: -1, SnapshotInterval: -1, SnapshotFactor: -1})
		g.start()
		m := newModel(t, "app.db", 10, 4)
		m.snapshot(g.store(), g.now())
		// Every compaction upload fails; level-0 uploads still succeed.
		up := fs.Inject(memstore.Fault{Op: memstore.OpWrite, Err: s3backend.ErrUnreachable,
			Match: func(c memstore.Call) bool { return c.Level > 0 }})
		for range 10 {
			m.batch(g.store(), g.now(), 1)
			g.advance(30 * time.Second)
		}
		if got := g.errs()[errKindCompaction]; got == 0 || got >= 10 {
			t.Errorf("compaction errors: got %d, want some, fewer than the 10 ticks (backoff)", got)
		}
		if n := len(g.r.maint.store.files("app.db", 1)); n != 0 {
			t.Fatalf("level 1 holds %d files while the store fails", n)
		}
		up()
		g.advance(time.Hour)
		l1 := g.r.maint.store.files("app.db", 1)
		if len(l1) == 0 || l1[len(l1)-1].MaxTXID != m.txid {
			t.Fatalf("level 1 after recovery: %v, want it to reach %d", keys(l1), m.txid)
		}
	})
}
