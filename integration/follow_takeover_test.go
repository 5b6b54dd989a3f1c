package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// promote runs `walfs promote` on a follower's mount point.
func promote(t testing.TB, f *mountProc) {
	t.Helper()
	out, err := runWalfs(t, "promote", f.Mnt)
	if err != nil {
		t.Fatalf("walfs promote %s: %v\n%s\nfollower log:\n%s", f.Mnt, err, out, f.log)
	}
	t.Logf("walfs promote: %s", strings.TrimSpace(out))
}

// requireFencedRefusal checks the output of an old primary that came back
// after a takeover: one error line, naming the new holder (its pid on this
// host) and, when the old primary kept transactions aside, their directory.
// It returns that error line.
func requireFencedRefusal(t testing.TB, out, dataDir string, holderPID int) string {
	t.Helper()
	lines := errorLines(out)
	if len(lines) != 1 {
		t.Fatalf("the old primary printed %d error lines, want 1:\n%s", len(lines), out)
	}
	line := lines[0]
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pid " + strconv.Itoa(holderPID), host} {
		if !strings.Contains(line, want) {
			t.Errorf("the old primary's error does not name the lease holder (%q):\n%s", want, line)
		}
	}
	fenced := filepath.Join(dataDir, ".walfs", "fenced")
	if entries, err := os.ReadDir(fenced); err == nil && len(entries) > 0 && !strings.Contains(line, fenced) {
		t.Errorf("the old primary kept transactions in %s but its error does not say so:\n%s", fenced, line)
	}
	return line
}

// clearDeadMount detaches the mount a killed walfs left behind, so a later
// check that nothing is mounted there means something.
func clearDeadMount(t testing.TB, mnt string) {
	t.Helper()
	if isMounted(mnt) {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Fatalf("unmount the dead mount %s: %v", mnt, err)
		}
	}
}

// A primary with --durability sync and a 6s lease, writing in WAL and in
// rollback-journal mode, is killed with SIGKILL; `walfs promote` turns the
// follower into the writer, which holds every commit the old primary
// acknowledged and writes on. The old primary, restarted on its data dir,
// refuses in one line naming the new holder, mounts nothing and changes
// nothing in the replica (the new primary is frozen with SIGSTOP meanwhile,
// its lease still valid, so any change would be the old one's); the real
// `litestream restore` reads the replica after the takeover to the new
// primary's databases.
func TestFollowTakeoverSync(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	const prefix = "takeover"
	replica := s3URL(srv, prefix)
	primaryFlags := []string{"--durability", "sync", "--lease", "required", "--lease-ttl", "6s"}
	dataA := filepath.Join(t.TempDir(), "primary")
	mntA := filepath.Join(t.TempDir(), "mnt")
	a := startMountAt(t, env, dataA, replica, mntA, primaryFlags...)

	dbs := []struct{ name, journal string }{{"acks.db", "wal"}, {"jacks.db", "delete"}}
	writers := make([]*ackWriter, len(dbs))
	for i, db := range dbs {
		writers[i] = startAckWriter(t, filepath.Join(mntA, db.name), 1, db.journal)
		writers[i].waitAcked(t, 20)
	}
	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "follower"), replica, filepath.Join(t.TempDir(), "mnt"),
		"--poll-interval", "200ms")
	// The follower applies while the writers go on; then the primary dies.
	for i, db := range dbs {
		writers[i].waitAcked(t, writers[i].acked()+50)
		waitRows(t, filepath.Join(b.Mnt, db.name), 1)
	}
	a.Kill()
	killed := time.Now()
	acked := make([]int, len(dbs))
	for i, w := range writers {
		select { // its next commit fails: the mount is gone
		case <-w.w.exited:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s still runs a minute after the primary was killed", w.w.name)
		}
		acked[i] = w.acked()
	}
	t.Logf("primary killed; acknowledged commits: %s %d, %s %d", dbs[0].name, acked[0], dbs[1].name, acked[1])

	promote(t, b)
	var firstWrite time.Time
	top := make([]int, len(dbs))
	for i, db := range dbs {
		path := filepath.Join(b.Mnt, db.name)
		if n := missingAcks(t, path, acked[i]); n != 0 {
			t.Errorf("%s: %d of %d acknowledged commits are missing on the new primary", db.name, n, acked[i])
		}
		// A commit that reached the store as the primary died may be there
		// unacknowledged ("commit failed, state unknown"): write on after it.
		top[i] = maxAckID(t, path)
		at := insertRows(t, path, top[i]+1, top[i]+200)
		if i == 0 {
			firstWrite = at
		}
	}
	t.Logf("on the new primary: %s up to %d, %s up to %d (acknowledged: %d, %d)", dbs[0].name, top[0], dbs[1].name, top[1], acked[0], acked[1])
	t.Logf("takeover: %s from kill -9 of the primary to the first commit on the new one", firstWrite.Sub(killed).Round(time.Millisecond))
	b.Sync()
	for i, db := range dbs {
		if n := missingAcks(t, filepath.Join(b.Mnt, db.name), top[i]+200); n != 0 {
			t.Errorf("%s: %d rows missing on the new primary after writing on", db.name, n)
		}
	}

	// The old primary comes back on its data dir.
	clearDeadMount(t, mntA)
	thaw := frozen(t, b)
	before := stableObjects(t, srv, prefix+"/")
	out := runOldPrimary(t, env, dataA, replica, mntA, primaryFlags...)
	after := replicaObjects(t, srv, prefix+"/")
	thaw()
	line := requireFencedRefusal(t, out, dataA, b.cmd.Process.Pid)
	t.Logf("old primary refused: %s", line)
	if isMounted(mntA) {
		t.Errorf("the old primary left %s mounted", mntA)
	}
	if d := diffObjects(before, after); len(d) > 0 {
		t.Errorf("the old primary changed the replica:\n%s", strings.Join(d, "\n"))
	}
	if holder := string(srv.Get(t, prefix+"/.walfs-lease.json")); !strings.Contains(holder, `"pid":`+strconv.Itoa(b.cmd.Process.Pid)) {
		t.Errorf("lease object no longer names the new primary (pid %d): %s", b.cmd.Process.Pid, holder)
	}

	// Litestream reads the replica after the takeover.
	for _, db := range dbs {
		live := filepath.Join(b.Mnt, db.name)
		requireSameDB(t, live, litestreamRestore(t, srv, prefix+"/"+db.name))
		requireSameDB(t, live, restoreToEnv(t, env, s3URL(srv, prefix+"/"+db.name)))
	}
	b.Unmount()
}

// An async primary whose uploads wait (--sync-interval 1h) is killed with
// commits acknowledged but not uploaded; after a promotion and writes on
// the new primary, the old one restarted on its data dir uploads none of
// them: it refuses in one line naming the new holder and the directory
// under its data dir where it kept those commits, which holds something.
// The replica stays the new primary's.
func TestFollowFencedKeepsUnuploaded(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	const prefix = "fenced"
	replica := s3URL(srv, prefix)
	primaryFlags := []string{"--sync-interval", "1h", "--lease", "required", "--lease-ttl", "6s"}
	dataA := filepath.Join(t.TempDir(), "primary")
	mntA := filepath.Join(t.TempDir(), "mnt")
	a := startMountAt(t, env, dataA, replica, mntA, primaryFlags...)
	dbA := filepath.Join(mntA, "acks.db")
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
`, dbA)
	insertRows(t, dbA, 1, 50)
	a.Sync()
	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "follower"), replica, filepath.Join(t.TempDir(), "mnt"))
	dbB := filepath.Join(b.Mnt, "acks.db")
	waitSameDB(t, dbA, dbB)

	insertRows(t, dbA, 51, 100) // acknowledged, spooled, not uploaded
	a.Kill()
	promote(t, b)
	if n := missingAcks(t, dbB, 50); n != 0 {
		t.Fatalf("%d of the 50 uploaded rows are missing on the new primary", n)
	}
	insertRows(t, dbB, 1001, 1010)
	b.Sync()

	clearDeadMount(t, mntA)
	thaw := frozen(t, b)
	before := stableObjects(t, srv, prefix+"/")
	out := runOldPrimary(t, env, dataA, replica, mntA, primaryFlags...)
	after := replicaObjects(t, srv, prefix+"/")
	thaw()
	line := requireFencedRefusal(t, out, dataA, b.cmd.Process.Pid)
	t.Logf("old primary refused: %s", line)
	fenced := filepath.Join(dataA, ".walfs", "fenced")
	if !strings.Contains(line, fenced) {
		t.Errorf("the old primary's error does not name %s, where its unuploaded commits must be:\n%s", fenced, line)
	}
	var kept []string
	filepath.WalkDir(fenced, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil && info.Size() > 0 {
				kept = append(kept, strings.TrimPrefix(path, fenced+"/"))
			}
		}
		return nil
	})
	if len(kept) == 0 {
		t.Errorf("%s holds no files; the 50 commits the old primary never uploaded were dropped", fenced)
	}
	t.Logf("kept aside in %s: %v", fenced, kept)
	if isMounted(mntA) {
		t.Errorf("the old primary left %s mounted", mntA)
	}
	if d := diffObjects(before, after); len(d) > 0 {
		t.Errorf("the old primary changed the replica:\n%s", strings.Join(d, "\n"))
	}
	got := py(t, `
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("select count(*), min(id), max(id), sum(id > 50 and id <= 100) from acks").fetchone())
`, restoreToEnv(t, env, s3URL(srv, prefix+"/acks.db")))
	if want := "(60, 1, 1010, 0)"; strings.TrimSpace(got) != want {
		t.Errorf("replica after the takeover holds (count, min, max, rows of the old primary's unuploaded commits) %s, want %s", strings.TrimSpace(got), want)
	}
	b.Unmount()
}

// waitRows waits until table acks of db (a follower's copy) holds at
// least n rows.
func waitRows(t testing.TB, db string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := strings.TrimSpace(pyQuiet(`
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=30)
print(c.execute("select count(*) from acks").fetchone()[0])
`, db))
		if k, err := strconv.Atoi(out); err == nil && k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds no %d rows a minute on: %s", db, n, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A follower started with --takeover-after becomes the writer by itself
// once the primary is gone (here killed with SIGKILL): a write on it
// succeeds without `walfs promote`, it holds what the primary uploaded, and
// the old primary restarted on its data dir is refused.
func TestFollowTakeoverAfter(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	const prefix = "auto"
	replica := s3URL(srv, prefix)
	primaryFlags := []string{"--lease", "required", "--lease-ttl", "6s"}
	dataA := filepath.Join(t.TempDir(), "primary")
	mntA := filepath.Join(t.TempDir(), "mnt")
	a := startMountAt(t, env, dataA, replica, mntA, primaryFlags...)
	dbA := filepath.Join(mntA, "acks.db")
	insertRows(t, dbA, 1, 30)
	a.Sync()
	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "follower"), replica, filepath.Join(t.TempDir(), "mnt"),
		"--lease-ttl", "6s", "--takeover-after", "2s")
	dbB := filepath.Join(b.Mnt, "acks.db")
	waitSameDB(t, dbA, dbB)
	a.Kill()
	killed := time.Now()

	const write = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=1)
c.execute("insert into acks(id, v) values (1001, 'on the new primary')")
print("OK")
`
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for last = pyQuiet(write, dbB); !strings.Contains(last, "OK"); last = pyQuiet(write, dbB) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower did not take over within 90s of the primary's death; last write: %s\nfollower log:\n%s", strings.TrimSpace(last), b.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("automatic takeover: first write accepted %s after kill -9 of the primary", time.Since(killed).Round(time.Millisecond))
	if n := missingAcks(t, dbB, 30); n != 0 {
		t.Errorf("%d of the primary's 30 uploaded rows are missing on the new primary", n)
	}
	b.Sync()
	clearDeadMount(t, mntA)
	out := runOldPrimary(t, env, dataA, replica, mntA, primaryFlags...)
	t.Logf("old primary refused: %s", requireFencedRefusal(t, out, dataA, b.cmd.Process.Pid))
	b.Unmount()
}

// maxAckID returns the largest id in table acks of db.
func maxAckID(t testing.TB, db string) int {
	t.Helper()
	out := strings.TrimSpace(py(t, `
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=30)
print(c.execute("select coalesce(max(id), 0) from acks").fetchone()[0])
`, db))
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("max id of %s: %q", db, out)
	}
	return n
}
