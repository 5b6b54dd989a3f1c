package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// A database whose WAL outlived its writer (an app killed while walfs was
// down, or walfs restarted under a running app) is found at start; the
// commits made through the mount afterwards must reach the replica. On the
// passthrough path they once did not: the capture had loaded the WAL at start
// but never opened its read handle, and `walfs sync` reported the replica up
// to date while it lacked every new commit.
func TestLeftoverWALIsCaptured(t *testing.T) {
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) {
			requireEnv(t)
			dir := t.TempDir()
			dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
			if err := os.MkdirAll(dataDir, 0o755); err != nil {
				t.Fatal(err)
			}
			py(t, `
import sqlite3, os, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal"); c.execute("pragma wal_autocheckpoint=0")
c.execute("create table t(v)")
c.execute("insert into t values('before walfs')")
os._exit(0)  # dies holding the WAL: it stays behind
`, filepath.Join(dataDir, "app.db"))
			if _, err := os.Stat(filepath.Join(dataDir, "app.db-wal")); err != nil {
				t.Fatalf("no WAL left behind: %v", err)
			}
			m := startMount(t, dataDir, replica, "--capture", capture)
			db := filepath.Join(m.Mnt, "app.db")
			py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for i in range(20):
    c.execute("insert into t values(?)", ("through the mount %d" % i,))
c.execute("pragma wal_checkpoint(PASSIVE)")
for i in range(5):
    c.execute("insert into t values(?)", ("after the checkpoint %d" % i,))
`, db)
			m.Sync()
			restored := restoreTo(t, replica+"/app.db")
			if a, b := dump(t, db), dump(t, restored); a != b {
				t.Fatalf("restore differs from live db:\n%s", diffLines(a, b))
			}
			m.Unmount()
		})
	}
}
