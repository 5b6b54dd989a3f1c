package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// followWriteScript tries writes on a follower's database and prints one
// line per attempt: "REFUSED <statement>: <error>" or "ACCEPTED <statement>".
// BEGIN IMMEDIATE alone is no attempt: SQLite accepts it on a read-only
// file (as on a read-only filesystem) and refuses the first write after it.
const followWriteScript = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
print("MODE", c.execute("pragma journal_mode").fetchone()[0])
for stmt in ["insert into t(v) values ('from the follower')", "delete from t", "update t set v = 'x'",
             "create table z(a)", "pragma user_version = 7", "begin immediate; insert into t(v) values (1)"]:
    try:
        for part in stmt.split("; "):
            c.execute(part)
        print("ACCEPTED", stmt)
        if c.in_transaction:
            c.execute("rollback")
    except sqlite3.OperationalError as e:
        print("REFUSED %s: %s" % (stmt, e))
`

// A follower shows the primary's databases read-only in rollback-journal
// mode and keeps them current: SQL writes fail with "attempt to write a
// readonly database", file writes with EROFS, and neither changes anything;
// a database created on the primary (also in a new subdirectory) appears,
// a deleted one disappears.
func TestFollowBasics(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	replica := s3URL(srv, "basics")
	a := startMountEnv(t, env, filepath.Join(t.TempDir(), "primary"), replica)
	py(t, `
import os, sqlite3, sys
for name, mode in (("app.db", "wal"), ("j.db", "delete"), ("sub/s.db", "wal")):
    os.makedirs(os.path.dirname(os.path.join(sys.argv[1], name)), exist_ok=True)
    c = sqlite3.connect(os.path.join(sys.argv[1], name), isolation_level=None)
    c.execute("pragma journal_mode=%s" % mode)
    c.execute("create table t(id integer primary key, v text)")
    for i in range(100):
        c.execute("insert into t(v) values (?)", ("%s row %d" % (name, i),))
    c.close()
`, a.Mnt)
	a.Sync()
	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "follower"), replica, filepath.Join(t.TempDir(), "mnt"), "--poll-interval", "200ms")
	for _, db := range []string{"app.db", "j.db", "sub/s.db"} {
		waitSameDB(t, filepath.Join(a.Mnt, db), filepath.Join(b.Mnt, db))
	}

	// Read-only, presented in rollback-journal mode.
	app := filepath.Join(b.Mnt, "app.db")
	hdr := make([]byte, 100)
	f, err := os.Open(app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if hdr[18] != 1 || hdr[19] != 1 {
		t.Errorf("follower's app.db header: file format write/read versions %d/%d, want 1/1 (rollback journal)", hdr[18], hdr[19])
	}
	out := py(t, followWriteScript, app)
	t.Logf("writes on the follower:\n%s", strings.TrimSpace(out))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(line, "MODE "):
			if mode := strings.TrimPrefix(line, "MODE "); mode == "wal" {
				t.Errorf("follower presents app.db in journal mode %q, want a rollback-journal mode", mode)
			}
		case !strings.HasPrefix(line, "REFUSED ") || !strings.Contains(line, "attempt to write a readonly database"):
			t.Errorf("want the write refused with \"attempt to write a readonly database\": %s", line)
		}
	}
	for _, argv := range [][]string{
		{"touch", filepath.Join(b.Mnt, "new-file")},
		{"touch", app},
		{"rm", "-f", app},
		{"mv", app, filepath.Join(b.Mnt, "moved.db")},
		{"mkdir", filepath.Join(b.Mnt, "dir")},
		{"sh", "-c", "echo x >> " + app},
		{"truncate", "-s", "0", app},
	} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Read-only file system") {
			t.Errorf("%s on the follower: %v %s; want it refused with \"Read-only file system\"", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
		}
	}
	if f, err := os.OpenFile(app, os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		if err == nil {
			f.Close()
		}
		t.Errorf("open the follower's app.db for writing: %v, want EROFS", err)
	}
	waitSameDB(t, filepath.Join(a.Mnt, "app.db"), app)

	// New databases appear, deleted ones disappear, and it keeps following.
	py(t, `
import os, sqlite3, sys
for name, mode in (("new.db", "wal"), ("deep/er/n.db", "delete")):
    os.makedirs(os.path.dirname(os.path.join(sys.argv[1], name)), exist_ok=True)
    c = sqlite3.connect(os.path.join(sys.argv[1], name), isolation_level=None)
    c.execute("pragma journal_mode=%s" % mode)
    c.execute("create table t(v)")
    c.execute("insert into t values (?)", (name,))
    c.close()
c = sqlite3.connect(os.path.join(sys.argv[1], "app.db"), isolation_level=None)
c.execute("insert into t(v) values ('after the follower started')")
`, a.Mnt)
	if err := os.Remove(filepath.Join(a.Mnt, "j.db")); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"new.db", "deep/er/n.db", "app.db"} {
		waitSameDB(t, filepath.Join(a.Mnt, db), filepath.Join(b.Mnt, db))
	}
	status := walfsStatus(t, b.Mnt)
	if !strings.Contains(status, "app.db") {
		t.Errorf("walfs status of the follower does not show app.db:\n%s", status)
	}
	t.Logf("walfs status of the follower:\n%s", status)
	waitGone(t, filepath.Join(b.Mnt, "j.db"))
	b.Unmount()
	a.Unmount()
}

// A follower follows a replica written by the real `litestream replicate`
// v0.5.18 (no walfs head or lease object; compaction into levels 1..3 and
// deletion of compacted level-0 files within seconds): while the source is
// written, every read of the follower's copy is a whole workload state, and
// after the writes stop the copy equals the source.
func TestFollowLitestreamReplica(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	src := filepath.Join(t.TempDir(), "src.db")
	ls := startLitestream(t, srv, src, "ls/src.db")
	_, n := runWorkload(t, src, 1.5, 0)
	deadline := time.Now().Add(30 * time.Second)
	for uploaded := false; !uploaded; {
		for _, l := range walfsLevels(t, env, s3URL(srv, "ls/src.db")) {
			uploaded = uploaded || len(l.Objects) > 0
		}
		if !uploaded && time.Now().After(deadline) {
			t.Fatalf("litestream uploaded nothing in 30s\n%s", ls.log)
		}
		time.Sleep(200 * time.Millisecond)
	}

	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "follower"), s3URL(srv, "ls"), filepath.Join(t.TempDir(), "mnt"), "--poll-interval", "200ms")
	copyPath := filepath.Join(b.Mnt, "src.db")
	w := startPyWorker(t, "workload", func(line string) { fmt.Sscanf(line, "N %d", &n) }, lsWorkloadScript, src, "6", fmt.Sprint(n))
	reads, lastK := 0, 0
	for w.running() {
		k, _ := checkWorkload(t, copyPath) // fails on a state that is no workload state
		if k < lastK {
			t.Fatalf("the follower went back from %d to %d transactions", lastK, k)
		}
		reads, lastK = reads+1, k
		time.Sleep(200 * time.Millisecond)
	}
	w.wait(t)
	ls.stop(t)
	t.Logf("%d reads of the follower's copy while the source was written; last saw %d of %d transactions", reads, lastK, n)
	deadline = time.Now().Add(60 * time.Second)
	for {
		k, _ := checkWorkload(t, copyPath)
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower holds %d of %d transactions a minute after the writes stopped", k, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	requireSameDB(t, src, copyPath)
	b.Unmount()
}
