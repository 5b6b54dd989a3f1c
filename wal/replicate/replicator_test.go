package replicate

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	_ "modernc.org/sqlite" // real SQLite databases for the data dir

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/restore"
)

// makeWALDatabase creates a SQLite database in WAL mode with some rows and
// closes it (SQLite then checkpoints and removes the WAL).
func makeWALDatabase(t testing.TB, path string, rows int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"pragma journal_mode=wal", "create table t(id integer primary key, v text)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rows {
		if _, err := db.Exec("insert into t(v) values(?)", filepath.Base(path)+string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}
}

// startReplicator starts a Replicator over dataDir with every store call
// counted. Call it in a synctest bubble: the maintenance loops then run on
// the bubble's clock.
func startReplicator(t *testing.T, dataDir string, inner s3backend.Store) (*Replicator, *instrument.Counter) {
	t.Helper()
	count := instrument.NewCounter()
	r, err := New(Options{
		DataDir: dataDir, Store: instrument.Wrap(inner, count), Logger: testLogger(t),
	})
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
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return r, count
}

func callsOf(c *instrument.Counter) map[string]uint64 {
	out := map[string]uint64{}
	for op, oc := range c.Ops() {
		out[op] = oc.Calls
	}
	return out
}

// A real Replicator over real SQLite databases: after start (which lists
// each database's levels once and uploads the first snapshots), idle
// databases cost no requests — neither the uploaders nor the maintenance
// loops send any for an hour of the bubble's clock.
func TestReplicatorIdleSendsNoRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dataDir := t.TempDir()
		makeWALDatabase(t, filepath.Join(dataDir, "a.db"), 10)
		makeWALDatabase(t, filepath.Join(dataDir, "sub", "b.db"), 10)
		r, count := startReplicator(t, dataDir, s3backend.NewFileStore(t.TempDir()))

		atStart := callsOf(count)
		// Start: one listing of the databases, five levels listed per database
		// (resume's replica position, which also seeds the index), one snapshot
		// upload per database.
		if got := atStart[instrument.OpList]; got != 10 {
			t.Errorf("LISTs at start: got %d, want 10 (5 levels x 2 databases)", got)
		}
		if got := atStart[instrument.OpPut]; got != 2 {
			t.Errorf("PUTs at start: got %d, want 2 (one snapshot per database)", got)
		}
		for _, db := range []string{"a.db", "sub/b.db"} {
			if got := count.LastHour(db); got != 6 {
				t.Errorf("%s: requests in the last hour %d, want 6 (5 LISTs, 1 PUT)", db, got)
			}
		}
		synctest.Wait() // both loops wait for their first job
		time.Sleep(time.Minute)
		synctest.Wait()
		if d := diff(callsOf(count), atStart); len(d) > 0 {
			t.Fatalf("idle minute: %v requests, want none", d)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if d := diff(callsOf(count), atStart); len(d) > 0 {
			t.Fatalf("idle hour: %v requests, want none", d)
		}

		st := r.Status()
		if len(st) != 2 || st[0].DB != "a.db" || st[1].DB != "sub/b.db" {
			t.Fatalf("status: got %+v, want a.db and sub/b.db", st)
		}
		for _, s := range st {
			if s.LocalTXID != 1 || s.ReplicatedTXID != 1 || s.Lag != 0 || s.SpoolBytes != 0 {
				t.Errorf("%s: local %d replicated %d lag %s spool %d, want 1 1 0 0", s.DB, s.LocalTXID, s.ReplicatedTXID, s.Lag, s.SpoolBytes)
			}
			if s.LastUpload.IsZero() || s.Uploads != 1 || s.LastError != "" || len(s.Errors) != 0 {
				t.Errorf("%s: last upload %v, uploads %d, last error %q, errors %v", s.DB, s.LastUpload, s.Uploads, s.LastError, s.Errors)
			}
			if len(s.Levels) != 1 || s.Levels[0].Level != 9 || s.Levels[0].Files != 1 || s.Levels[0].MaxTXID != 1 {
				t.Errorf("%s: levels %+v, want one snapshot at TXID 1", s.DB, s.Levels)
			}
			if got := count.LastHour(s.DB); got != 0 {
				t.Errorf("%s: requests in the last hour %d after an idle hour, want 0", s.DB, got)
			}
		}
	})
}

// A restarted Replicator relearns the replica from the one listing at start
// and compacts what the previous run left uncompacted.
func TestReplicatorRestartSeedsIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dataDir := t.TempDir()
		inner := memstore.New()
		m := newModel(t, "app.db", 10, 9)
		m.snapshot(inner, time.Now())
		for range 5 {
			m.batch(inner, time.Now(), 1)
		}
		makeWALDatabase(t, filepath.Join(dataDir, "app.db"), 3) // does not match: starts a new lineage
		r, count := startReplicator(t, dataDir, inner)
		before := callsOf(count)
		synctest.Wait() // the loop waits for its first job
		time.Sleep(30 * time.Second)
		synctest.Wait()
		d := diff(callsOf(count), before)
		if d[instrument.OpList] != 0 || d[instrument.OpGet] != 5 || d[instrument.OpPut] != 1 {
			t.Errorf("first compaction after restart: %v, want 5 GETs (nothing cached) and 1 PUT, no LIST", d)
		}
		l1 := r.maint.store.files("app.db", 1)
		if len(l1) != 1 || l1[0].MinTXID != 2 || l1[0].MaxTXID != 6 {
			t.Errorf("level 1: %v, want 2-6", keys(l1))
		}
	})
}

// openLive opens the database at path with one connection, closed when the
// test ends.
func openLive(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

// requireRestoreMatches restores name from store and fails unless query q
// gives the same answer on the restored copy as on live.
func requireRestoreMatches(t *testing.T, store s3backend.Store, name string, live *sql.DB, q string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	if _, err := restore.Restore(t.Context(), store, name, out, restore.Options{IntegrityCheck: restore.IntegrityNone}); err != nil {
		t.Fatal(err)
	}
	rdb := openLive(t, out)
	var want, got string
	if err := live.QueryRow(q).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if err := rdb.QueryRow(q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("restored %q, live %q", got, want)
	}
}
