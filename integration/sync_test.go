package integration

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// With --durability sync, the store alone holds every commit SQLite
// acknowledged, even when walfs is killed and never restarted, in WAL and in
// rollback-journal mode.
func TestSyncDurabilityStoreHoldsAcknowledgedCommits(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	for _, journal := range []string{"wal", "delete"} {
		t.Run(journal, func(t *testing.T) { syncDurabilityKill(t, srv, journal) })
	}
}

func syncDurabilityKill(t *testing.T, srv *testserver.Server, journal string) {
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	m := startMountEnv(t, env, dataDir, s3URL(srv, "sync-"+journal), "--durability", "sync", "--sync-timeout", "5s")
	w := exec.Command("python3", "-c", ackWriterScript, filepath.Join(m.Mnt, "acks.db"), "1", journal)
	out, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	maxAck := 0
	stop := time.Now().Add(1500 * time.Millisecond)
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			maxAck = n
		}
		if time.Now().After(stop) {
			break
		}
	}
	m.Kill() // no restart: the store must already have everything acknowledged
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			maxAck = n
		}
	}
	w.Process.Kill()
	w.Wait()
	if maxAck == 0 {
		t.Fatal("no commit was acknowledged")
	}
	restored := restoreToEnv(t, env, s3URL(srv, "sync-"+journal+"/acks.db"))
	got := strings.TrimSpace(py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("select count(*) from acks where id <= ?", (int(sys.argv[2]),)).fetchone()[0])
`, restored, strconv.Itoa(maxAck)))
	if got != strconv.Itoa(maxAck) {
		t.Fatalf("store holds %s of %d acknowledged commits", got, maxAck)
	}
	t.Logf("sync durability, %s mode: %d acknowledged commits, all in the store after kill -9", journal, maxAck)
}

// With --durability sync and the store down, a commit fails with an I/O
// error and is not committed locally either.
func TestSyncDurabilityStoreDownFailsCommit(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	m := startMountEnv(t, env, dataDir, s3URL(srv, "down"), "--durability", "sync", "--sync-timeout", "2s")
	db := filepath.Join(m.Mnt, "app.db")
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table t(id integer primary key, v text)")
c.execute("insert into t(v) values ('before outage')")
`, db)
	srv.Stop()
	got := py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
try:
    c.execute("insert into t(v) values ('during outage')")
    print("committed")
except sqlite3.Error as e:
    print("failed:", e)
c.close()
c = sqlite3.connect(sys.argv[1], isolation_level=None)
print(c.execute("pragma integrity_check").fetchone()[0])
print(c.execute("select group_concat(v) from t").fetchone()[0])
`, db)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "failed:") || lines[1] != "ok" || lines[2] != "before outage" {
		t.Fatalf("want a failed commit, an intact db and only the first row; got:\n%s", got)
	}
	t.Logf("store down: %s", lines[0])
	m.Kill()
}
