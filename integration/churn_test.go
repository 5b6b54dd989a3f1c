package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// churnScript is a bounded burst of database churn, in DELETE and WAL
// journal modes alternately. Every step recreates testdir/test.db (deletes
// it with its journal or WAL, creates it, three transactions), as SQLite's
// I/O-fault tests do several times a second, and creates many/dbNNNN.db
// (three transactions) and deletes the one made three steps earlier unless
// it is one of every tenth, which survive. It prints the surviving databases.
const churnScript = `
import os, sqlite3, sys
mnt, steps = sys.argv[1], int(sys.argv[2])
def rm(p):
    for s in ("", "-journal", "-wal", "-shm"):
        try: os.remove(p + s)
        except FileNotFoundError: pass
def make(p, mode, tag):
    c = sqlite3.connect(p)
    c.execute("pragma journal_mode=" + mode)
    c.execute("create table t(id integer primary key, v text)")
    for k in range(3):
        c.execute("insert into t(v) values (?)", ("%s row %d " % (tag, k) + "x" * 300,))
        c.commit()
    c.close()
os.makedirs(os.path.join(mnt, "testdir"), exist_ok=True)
os.makedirs(os.path.join(mnt, "many"), exist_ok=True)
test = os.path.join(mnt, "testdir", "test.db")
name = lambda i: "many/db%04d.db" % i
for i in range(steps):
    mode = ("delete", "wal")[i % 2]
    rm(test)
    make(test, mode, "test %d" % i)
    make(os.path.join(mnt, name(i)), mode, name(i))
    j = i - 3
    if j >= 0 and j % 10 != 0:
        rm(os.path.join(mnt, name(j)))
print("testdir/test.db")
for i in range(steps):
    if i % 10 == 0 or i >= steps - 3:
        print(name(i))
`

// Lag stays bounded under churn: creating, writing and deleting many
// databases, and recreating one several times a second, leaves no backlog
// that outlives the burst by more than a few seconds at default settings
// (every database's replica at its local TXID within 10 s), and the
// surviving databases restore to their live content.
func TestChurn(t *testing.T) {
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) { testChurn(t, capture) })
	}
}

func testChurn(t *testing.T, capture string) {
	const steps = 120
	dir := t.TempDir()
	replica := "file://" + filepath.Join(dir, "replica")
	m := startMount(t, filepath.Join(dir, "data"), replica, "--capture", capture)

	start := time.Now()
	survivors := strings.Fields(py(t, churnScript, m.Mnt, fmt.Sprint(steps)))
	burstEnd := time.Now()
	t.Logf("burst: %d steps in %s", steps, burstEnd.Sub(start).Round(time.Millisecond))

	// Every database's replica reaches its local TXID within 10 s of the
	// burst's end (the bar): poll, since that is the condition.
	deadline := burstEnd.Add(10 * time.Second)
	for {
		st := status(t, m.Mnt)
		var behind []string
		for _, d := range st.Databases {
			if d.ReplicatedTXID != d.LocalTXID {
				behind = append(behind, fmt.Sprintf("%s local %d replicated %d lag %.1fs spool %d %s",
					d.DB, d.LocalTXID, d.ReplicatedTXID, d.LagSeconds, d.SpoolBytes, d.LastError))
			}
		}
		if len(behind) == 0 {
			t.Logf("drained %s after the burst: %d databases, store requests %v",
				time.Since(burstEnd).Round(time.Millisecond), len(st.Databases), st.StoreRequests)
			if len(st.Databases) < steps+1 {
				t.Fatalf("status lists %d databases, want at least %d", len(st.Databases), steps+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d database(s) still behind 10s after the burst:\n%s", len(behind), strings.Join(behind, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	m.Sync()
	for _, db := range survivors {
		requireSameDB(t, filepath.Join(m.Mnt, filepath.FromSlash(db)), restoreTo(t, replica+"/"+db))
	}
	m.Unmount()
}

// The replica churn leaves — snapshots that superseded transactions never
// uploaded, deleted databases' uploads dropped — is still Litestream's
// layout: the real `litestream restore` rebuilds every surviving database.
func TestChurnRestoresWithLitestream(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	m := startMountEnv(t, env, dataDir, s3URL(srv, "walfs/churn"))
	survivors := strings.Fields(py(t, churnScript, m.Mnt, "40"))
	m.Unmount()
	for _, db := range survivors {
		live := filepath.Join(dataDir, filepath.FromSlash(db))
		requireSameDB(t, live, litestreamRestoreArgs(t, srv, "walfs/churn/"+db))
		requireSameDB(t, live, restoreToEnv(t, env, s3URL(srv, "walfs/churn/"+db)))
	}
}
