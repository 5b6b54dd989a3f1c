package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpoolTailLost: walfs does not fsync its spool at each rollback-journal
// commit, nor (passthrough path) at a WAL checkpoint: SQLite has synced the
// database, which holds the commits. A power cut can then take the spool's
// last records with it. This test makes that happen (kill -9, then cut the
// open spool segment in the middle of its records, as a lost page cache
// would) and requires the next start to find the database past the spool and
// ship it: the restore equals the live database, and verify says equal.
//
// The "lost" cases take a whole spool file instead: the spooled first
// snapshot, which nothing syncs before the records that follow it reach
// their segment. The segment left behind no longer chains onto anything;
// the restart drops it and ships the database.
func TestSpoolTailLost(t *testing.T) {
	for _, tc := range []struct {
		capture, journal string
		lose             bool // remove the spooled snapshot instead of cutting the segment
	}{
		{"passthrough", "delete", false}, {"userspace", "delete", false}, {"passthrough", "wal", false},
		{"passthrough", "wal", true}, {"passthrough", "delete", true},
	} {
		capture := tc.capture
		name := capture + "_" + tc.journal
		if tc.lose {
			name += "_snapshot_lost"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
			replica := "file://" + replicaDir
			mnt := filepath.Join(dir, "mnt")
			// Uploads wait an hour: the commits stay in the spool.
			m := startMountAt(t, nil, dataDir, replica, mnt, "--capture", capture, "--sync-interval", "1h")
			db := filepath.Join(mnt, "cut.db")
			// In WAL mode the connection checkpoints as it goes (a small
			// wal_autocheckpoint) and the WAL is empty at the end: only the
			// database holds what the cut spool lost.
			py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=" + sys.argv[2])
c.execute("pragma wal_autocheckpoint=20")
c.execute("create table t(id integer primary key, v blob)")
for i in range(200):
    c.execute("insert into t(v) values (randomblob(300))")
if sys.argv[2] == "wal":
    c.execute("pragma wal_checkpoint(truncate)")
c.close()
`, db, tc.journal)
			m.Kill()
			spoolDir := filepath.Join(dataDir, ".walfs", "spool", "cut.db")
			segs, err := filepath.Glob(filepath.Join(spoolDir, "*.seg"))
			if err != nil || len(segs) == 0 {
				t.Fatalf("no spool segment of cut.db (err %v): the commits should wait in the spool", err)
			}
			if tc.lose {
				// The first upload waits an interval too: the snapshot of the
				// database's first commit is still in the spool.
				snaps, err := filepath.Glob(filepath.Join(spoolDir, "*.snap.ltx"))
				if err != nil || len(snaps) != 1 {
					t.Fatalf("spooled snapshots of cut.db: %v (err %v), want one", snaps, err)
				}
				if err := os.Remove(snaps[0]); err != nil {
					t.Fatal(err)
				}
				t.Logf("removed spooled snapshot %s; segments %v remain", filepath.Base(snaps[0]), segs)
			} else {
				seg := segs[len(segs)-1]
				fi, err := os.Stat(seg)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(seg, fi.Size()/2); err != nil {
					t.Fatal(err)
				}
				t.Logf("cut spool segment %s from %d to %d bytes", filepath.Base(seg), fi.Size(), fi.Size()/2)
			}

			m = startMountAt(t, nil, dataDir, replica, mnt, "--capture", capture, "--sync-interval", "1h")
			m.Sync()
			restored := restoredEqualsLive(t, replica+"/cut.db", filepath.Join(dataDir, "cut.db"), 4096, "after the cut")
			if n := strings.TrimSpace(py(t, `
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0])
`, restored)); n != "200" {
				t.Fatalf("restored database has %s rows, want 200", n)
			}
			requireLines(t, walfsLines(t, 0, "verify", "--no-repair", mnt), map[string]string{db: "equal at TXID"})
			switch {
			case tc.lose && !strings.Contains(m.log.String(), "spool file lost"):
				t.Errorf("the restart did not drop the segment that lost its snapshot")
			case !tc.lose && !strings.Contains(m.log.String(), "database does not match its replica"):
				t.Errorf("the restart did not find the database past its cut spool")
			}
			m.Unmount()
		})
	}
}
