package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The end-to-end flow of the README: mount, write through real SQLite,
// unmount, restore; then a brand-new data dir restores itself from the
// replica before the mount appears.
func TestEndToEndFileReplica(t *testing.T) {
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) { testEndToEnd(t, capture) })
	}
}

func testEndToEnd(t *testing.T, capture string) {
	dir := t.TempDir()
	dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
	replica := "file://" + replicaDir
	m := startMount(t, dataDir, replica, "--capture", capture)

	py(t, `
import sqlite3, sys, os
mnt = sys.argv[1]
os.makedirs(os.path.join(mnt, "sub", "dir"), exist_ok=True)
for name in ("app.db", "sub/dir/nested.db"):
    c = sqlite3.connect(os.path.join(mnt, name), isolation_level=None)
    c.execute("pragma journal_mode=wal")
    c.execute("create table t(id integer primary key, v text)")
    c.execute("begin"); [c.execute("insert into t(v) values (?)", ("row %d" % i,)) for i in range(500)]; c.execute("commit")
    c.execute("pragma wal_checkpoint(TRUNCATE)")
    c.execute("insert into t(v) values ('after checkpoint')")
    c.execute("begin"); c.execute("delete from t"); c.execute("rollback")
    c.execute("update t set v = v || '!' where id % 7 = 0")
    c.close()
`, m.Mnt)
	m.Unmount()

	for _, db := range []string{"app.db", "sub/dir/nested.db"} {
		live := filepath.Join(dataDir, filepath.FromSlash(db))
		restored := restoreTo(t, replica+"/"+db)
		requireSameDB(t, live, restored)
		if got := py(t, `import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0])`, restored); strings.TrimSpace(got) != "501" {
			t.Fatalf("%s: restored %s rows, want 501", db, strings.TrimSpace(got))
		}
	}
	// Written within one sync interval of its creation, the database went
	// up as one snapshot (its first upload folds in what followed).
	if _, err := os.Stat(filepath.Join(replicaDir, "app.db", "0009")); err != nil {
		t.Fatalf("replica lacks level 0009: %v", err)
	}

	// A new machine: empty data dir, same replica.
	fresh := filepath.Join(dir, "fresh")
	m2 := startMount(t, fresh, replica, "--capture", capture)
	for _, db := range []string{"app.db", "sub/dir/nested.db"} {
		requireSameDB(t, filepath.Join(dataDir, filepath.FromSlash(db)), filepath.Join(m2.Mnt, filepath.FromSlash(db)))
	}
	// Writes continue the same lineage after an auto-restore.
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("insert into t(v) values ('on the new machine')")
c.close()
`, filepath.Join(m2.Mnt, "app.db"))
	m2.Unmount()
	requireSameDB(t, filepath.Join(fresh, "app.db"), restoreTo(t, replica+"/app.db"))
}
