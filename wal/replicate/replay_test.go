package replicate

import (
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/walfs/walfs/s3backend/memstore"
)

// walfs dies after SQLite committed and before the spool had the
// transactions: the restart finds them in the WAL and spools them, rather
// than uploading a snapshot of the whole database.
func TestRestartReplaysWALAheadOfSpool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dataDir := t.TempDir()
		path := filepath.Join(dataDir, "app.db")
		makeWALDatabase(t, path, 10)
		store := memstore.New()
		r, _ := startReplicator(t, dataDir, store) // snapshot at TXID 1
		r.Close()

		// Five commits while walfs is away; the connection stays open so the
		// WAL is neither checkpointed nor removed.
		db := openLive(t, path)
		for _, q := range []string{"pragma wal_autocheckpoint=0", "insert into t(v) values('1')", "insert into t(v) values('2')",
			"update t set v = 'x' where id % 2 = 0", "insert into t(v) values('3')", "delete from t where id = 3"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}

		startReplicator(t, dataDir, store) // flushes what it spooled
		snaps, err := store.List(t.Context(), "app.db", 9)
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) != 1 || snaps[0].MaxTXID != 1 {
			t.Fatalf("level 9 holds %v, want only the first snapshot", snaps)
		}
		l0, err := store.List(t.Context(), "app.db", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(l0) == 0 || l0[0].MinTXID != 2 || l0[len(l0)-1].MaxTXID != 6 {
			t.Fatalf("level 0 holds %v, want TXIDs 2-6", l0)
		}
		// The replica restores to exactly what SQLite sees.
		requireRestoreMatches(t, store, "app.db", db, "select group_concat(id || ':' || v, ',') from (select * from t order by id)")
	})
}
