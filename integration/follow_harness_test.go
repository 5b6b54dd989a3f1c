package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// What the follower tests (follow_*_test.go) share: starting followers,
// python worker processes whose output lines are parsed as they come, waiting
// for a follower to catch up, and the replica's object listing.

// startFollowerAt runs `walfs mount --follow` at mnt. Like startMountAt it
// returns once the mount is there, which for a follower is after every
// database under the replica path was restored.
func startFollowerAt(t testing.TB, env []string, dataDir, replica, mnt string, extra ...string) *mountProc {
	t.Helper()
	return startMountAt(t, env, dataDir, replica, mnt, append([]string{"--follow"}, extra...)...)
}

// followScript returns a python script of testdata/follow.
func followScript(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "follow", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pyWorker is a python3 process running in the background; each line it
// prints goes to onLine as it comes.
type pyWorker struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

// startPyWorker starts script with args; the worker is killed when the test
// ends if it still runs.
func startPyWorker(t testing.TB, name string, onLine func(string), script string, args ...string) *pyWorker {
	t.Helper()
	w := &pyWorker{name: name, stderr: &syncBuffer{}, exited: make(chan struct{})}
	w.cmd = exec.Command("python3", append([]string{"-c", script}, args...)...)
	w.cmd.Stderr = w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		w.err = w.cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			w.cmd.Process.Kill()
			<-w.exited
		}
	})
	return w
}

// running reports whether the worker has not exited yet.
func (w *pyWorker) running() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// wait waits for the worker to exit and fails the test unless it exited 0.
func (w *pyWorker) wait(t testing.TB) {
	t.Helper()
	select {
	case <-w.exited:
	case <-time.After(90 * time.Second):
		w.cmd.Process.Kill()
		<-w.exited
		t.Fatalf("%s did not stop within 90s\n%s", w.name, w.stderr)
	}
	if w.err != nil {
		t.Fatalf("%s: %v\n%s", w.name, w.err, w.stderr)
	}
}

// pyQuiet runs a python3 script and returns its combined output, whether
// or not it fails (for polling a database that may not be there yet).
func pyQuiet(script string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "python3", append([]string{"-c", script}, args...)...).CombinedOutput()
	return string(out)
}

// touch creates an empty file (the stop file of a group of workers).
func touch(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checksumScript prints, for each database path, the SHA-256 of its
// integrity check and canonical dump, "MISSING" when the file does not
// exist, or "ERR <message>" when it cannot be read.
const checksumScript = `
import hashlib, os, sqlite3, sys
for p in sys.argv[1:]:
    if not os.path.exists(p):
        print("MISSING")
        continue
    try:
        c = sqlite3.connect("file:" + p + "?mode=ro", uri=True, timeout=30)
        h = hashlib.sha256()
        h.update(c.execute("pragma integrity_check").fetchone()[0].encode())
        for line in c.iterdump():
            h.update(line.encode() + b"\n")
        c.close()
        print(h.hexdigest())
    except Exception as e:
        print("ERR", str(e).replace("\n", " "))
`

// waitSameDB waits until the follower's copy of a database has the same
// content as the primary's, and fails with the difference if it does not
// within a minute.
func waitSameDB(t testing.TB, primary, follower string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		sums := strings.Fields(py(t, checksumScript, primary, follower))
		if len(sums) == 2 && sums[0] == sums[1] && len(sums[0]) == 64 {
			return
		}
		last = strings.Join(sums, " ")
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("checksums after a minute (primary, follower): %s", last)
	requireSameDB(t, primary, follower)
	t.Fatalf("%s and %s: dumps are equal but checksums kept differing: %s", primary, follower, last)
}

// waitGone waits until path no longer exists (a database deleted on the
// primary disappearing from a follower).
func waitGone(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Lstat(path); os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s still exists a minute after it was deleted on the primary", path)
}

// missingAcks counts the ids 1..n absent from table acks of the database.
func missingAcks(t testing.TB, db string, n int) int {
	t.Helper()
	out := py(t, `
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=30)
n = int(sys.argv[2])
print(c.execute("select count(*) from (with recursive s(i) as (select 1 union all select i+1 from s where i < ?) select i from s where i not in (select id from acks))", (n,)).fetchone()[0])
`, db, strconv.Itoa(n))
	k, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("count missing acks in %s: %q", db, out)
	}
	return k
}

// ackWriter runs ackWriterScript (crash_test.go) on db and keeps the
// highest id whose commit returned.
type ackWriter struct {
	w  *pyWorker
	mu sync.Mutex
	n  int
}

func startAckWriter(t testing.TB, db string, start int, journal string) *ackWriter {
	t.Helper()
	a := &ackWriter{}
	a.w = startPyWorker(t, "ack writer "+filepath.Base(db), func(line string) {
		if n, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
			a.mu.Lock()
			a.n = max(a.n, n)
			a.mu.Unlock()
		}
	}, ackWriterScript, db, strconv.Itoa(start), journal)
	return a
}

// acked returns the highest acknowledged id so far.
func (a *ackWriter) acked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// waitAcked waits until at least n commits were acknowledged.
func (a *ackWriter) waitAcked(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for a.acked() < n {
		if !a.w.running() || time.Now().After(deadline) {
			t.Fatalf("%s: %d commits acknowledged, want %d\n%s", a.w.name, a.acked(), n, a.w.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// insertRows commits rows first..last into table acks of db (created if
// needed), one per transaction, and returns the time the first commit
// returned.
func insertRows(t testing.TB, db string, first, last int) time.Time {
	t.Helper()
	out := py(t, `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("create table if not exists acks(id integer primary key, v blob)")
t0 = None
for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
    c.execute("insert into acks(id, v) values (?, randomblob(200))", (i,))
    t0 = t0 or time.time()
print("%.6f" % t0)
`, db, strconv.Itoa(first), strconv.Itoa(last))
	f, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		t.Fatalf("insert rows into %s: %q", db, out)
	}
	return time.Unix(0, int64(f*1e9))
}

// replicaObjects returns the objects under prefix: key relative to prefix
// → ETag.
func replicaObjects(t testing.TB, srv *testserver.Server, prefix string) map[string]string {
	t.Helper()
	objs := map[string]string{}
	for _, o := range srv.List(t, prefix) {
		objs[strings.TrimPrefix(o.Key, prefix)] = o.ETag
	}
	return objs
}

// frozen stops a walfs process with SIGSTOP until the returned function
// (also run at cleanup) continues it: while frozen it changes nothing in the
// store, not even its lease or compacted files, so what changes then was
// written by someone else. Its lease stays valid for a while (its TTL) and
// its pid alive.
func frozen(t testing.TB, m *mountProc) (thaw func()) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { m.cmd.Process.Signal(syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	return thaw
}

// stableObjects returns replicaObjects once two listings 300ms apart agree
// (a request the frozen process sent just before it stopped has landed).
func stableObjects(t testing.TB, srv *testserver.Server, prefix string) map[string]string {
	t.Helper()
	objs := replicaObjects(t, srv, prefix)
	for range 20 {
		time.Sleep(300 * time.Millisecond)
		again := replicaObjects(t, srv, prefix)
		if len(diffObjects(objs, again)) == 0 {
			return again
		}
		objs = again
	}
	t.Fatalf("the replica under %s kept changing while its writer was frozen", prefix)
	return nil
}

// diffObjects describes how two listings of replicaObjects differ.
func diffObjects(before, after map[string]string) []string {
	var d []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			d = append(d, "added "+k)
		} else if w != v {
			d = append(d, "rewritten "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d = append(d, "deleted "+k)
		}
	}
	sort.Strings(d)
	return d
}

// runOldPrimary starts `walfs mount` on a data dir whose lease was taken
// over, expects it to exit non-zero by itself, and returns its output.
func runOldPrimary(t testing.TB, env []string, dataDir, replica, mnt string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"mount", "--data-dir", dataDir, "--replica", replica}, extra...)
	cmd := exec.CommandContext(ctx, walfsBin, append(args, mnt)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the old primary did not exit within 90s\n%s", out)
	}
	if err == nil {
		t.Fatalf("the old primary exited 0 on a replica whose lease another walfs holds\n%s", out)
	}
	return string(out)
}

// errorLines returns the lines walfs printed as its final error.
func errorLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "walfs: ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// percentiles returns the p50 and p99 of xs (nearest rank).
func percentiles(xs []float64) (p50, p99 float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	at := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return at(0.50), at(0.99)
}

// walfsStatus runs `walfs status` on a mount and returns its output,
// failing the test if it fails.
func walfsStatus(t testing.TB, mnt string) string {
	t.Helper()
	out, err := runWalfs(t, "status", mnt)
	if err != nil {
		t.Fatalf("walfs status %s: %v\n%s", mnt, err, out)
	}
	return out
}

func fmtSeconds(s float64) string { return fmt.Sprintf("%.3fs", s) }
