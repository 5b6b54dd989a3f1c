package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// reconcileRaceScript runs a writer process that commits without pause
// (WAL: with a checkpoint of some kind every few commits; a rollback-journal
// writer pauses 50 ms every 20 commits, for the reconciler reads such a
// database only between commits, docs/design.md) while this process
// opens the database with O_APPEND and closes it, again and again: each
// open and close is a write outside SQLite's protocol to the mount, which
// then reconciles the database at its next quiet moment, between the
// writer's commits. Nothing outside SQLite changes a byte.
// The writer stops at the file path.stop. argv: path journal rounds.
const reconcileRaceScript = `
import sqlite3, subprocess, sys, time
path, journal, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
writer = """
import os, sqlite3, sys, random, time
path, journal = sys.argv[1], sys.argv[2]
c = sqlite3.connect(path, timeout=30, isolation_level=None)
c.execute("pragma journal_mode=%s" % journal)
rnd = random.Random(7)
i = 0
while True:
    c.execute("insert into t(v) values (randomblob(?))", (rnd.randint(10, 3000),))
    i += 1
    if journal == "wal" and i % 7 == 0:
        c.execute("pragma wal_checkpoint(%s)" % rnd.choice(["passive", "full", "restart", "truncate"])).fetchall()
    if i % 20 == 0:
        if os.path.exists(path + ".stop"):
            break
        if journal != "wal":
            time.sleep(0.05)
"""
w = subprocess.Popen([sys.executable, "-c", writer, path, journal])
for _ in range(rounds):
    time.sleep(0.3)  # more than the mount's settle time: each mark is reconciled
    with open(path, "ab"):
        pass
open(path + ".stop", "w").close()
if w.wait() != 0:
    sys.exit("writer failed")
`

// A database written outside SQLite's protocol is reconciled while SQLite
// keeps writing it: the reconciler must read it as a SQLite reader would
// (the WAL's committed frames with checkpoints held off; a rollback-journal
// file only in a version no writer touched while it was read). Here nothing
// outside SQLite changes a byte, so every reconcile must find what the
// capture already has: a snapshot would mean it read a moment of the files
// that was not one SQLite committed, or folded commits it should have
// captured. In the end the replica must still restore the live database.
func TestReconcileWhileSQLiteWrites(t *testing.T) {
	requireEnv(t)
	for _, journal := range []string{"wal", "delete"} {
		t.Run(journal, func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
			m := startMount(t, dataDir, replica, "--capture", "passthrough")
			path := filepath.Join(m.Mnt, "app.db")
			py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=%s" % sys.argv[2])
c.execute("create table t(id integer primary key, v blob)")
`, path, journal)
			py(t, reconcileRaceScript, path, journal, "20")
			m.Sync()
			st := status(t, m.Mnt).db(t, "app.db")
			t.Logf("%s: %d reconciles, %d snapshots, TXID %d", journal, st.OutsideChecks, st.OutsideSnapshots, st.LocalTXID)
			if st.OutsideChecks < 5 {
				t.Errorf("only %d of 20 writes outside SQLite were reconciled", st.OutsideChecks)
			}
			if st.OutsideSnapshots > 0 || strings.Contains(m.log.String(), "changed outside SQLite's protocol") {
				t.Errorf("%d reconciles wrote a snapshot while SQLite wrote; nothing else changed the database", st.OutsideSnapshots)
			}
			if out, err := runWalfs(t, "verify", m.Mnt); err != nil {
				t.Errorf("walfs verify: %v\n%s", err, out)
			}
			requireSameDB(t, path, restoreTo(t, replica+"/app.db"))
		})
	}
}
