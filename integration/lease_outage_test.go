package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// requireLeaseFlag fails, saying why, when `walfs mount` has lost its
// --lease flag (cmd/walfs/mount.go), rather than leaving the tests to fail
// later on a mount that refuses an unknown flag.
func requireLeaseFlag(t *testing.T) {
	t.Helper()
	out, _ := runWalfs(t, "mount", "--help")
	if !strings.Contains(out, "--lease") {
		t.Fatalf("walfs mount --help lists no --lease flag:\n%s", out)
	}
}

// Two mounts of one replica path (different data dirs, as on two machines):
// the second refuses within seconds with a line naming the holder; after a
// clean unmount of the first, which releases the lease, the second starts
// at once.
func TestLeaseSecondMountRefused(t *testing.T) {
	requireEnv(t)
	requireLeaseFlag(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartMinIO(t)
	for _, tc := range []struct {
		name    string
		env     []string
		replica string
	}{
		{"s3", s3Env(srv), s3URL(srv, "leased")},
		{"file", nil, "file://" + filepath.Join(t.TempDir(), "replica")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := startMountEnv(t, tc.env, filepath.Join(t.TempDir(), "data1"), tc.replica, "--lease", "required")
			py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table t(v)")
c.execute("insert into t values ('first')")
`, filepath.Join(first.Mnt, "app.db"))

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			second := exec.CommandContext(ctx, walfsBin, "mount", "--data-dir", filepath.Join(t.TempDir(), "data2"),
				"--replica", tc.replica, "--lease", "required", filepath.Join(t.TempDir(), "mnt2"))
			second.Env = append(os.Environ(), tc.env...)
			start := time.Now()
			out, err := second.CombinedOutput()
			took := time.Since(start)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("second mount on the same replica path: err=%v after %s, want a refusal\n%s", err, took, out)
			}
			want := "in use by walfs pid " + strconv.Itoa(first.cmd.Process.Pid) + " on host " + host
			if !strings.Contains(string(out), want) || !strings.Contains(string(out), "expires at") {
				t.Fatalf("refusal does not name the holder (%q) and the expiry:\n%s", want, out)
			}
			t.Logf("second mount refused after %s: %s", took.Round(time.Millisecond), lineWith(string(out), want))

			first.Unmount() // releases the lease
			third := startMountEnv(t, tc.env, filepath.Join(t.TempDir(), "data3"), tc.replica, "--lease", "required")
			requireSameDB(t, filepath.Join(first.DataDir, "app.db"), filepath.Join(third.Mnt, "app.db"))
			third.Unmount()
		})
	}
}

func lineWith(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// envOutage overrides the outage length of TestStoreOutage (a Go duration).
const envOutage = "WALFS_TEST_OUTAGE"

// TestStoreOutage stops the MinIO process under a writer that commits
// continuously: the app keeps committing throughout; when MinIO comes back
// (same port, same data), `walfs sync` succeeds and a restore holds every
// acknowledged commit.
func TestStoreOutage(t *testing.T) {
	requireEnv(t)
	outage := 5 * time.Second
	if v := os.Getenv(envOutage); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envOutage, v, err)
		}
		outage = d
	}
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	m := startMountEnv(t, env, dataDir, s3URL(srv, "outage"))

	w := exec.Command("python3", "-c", ackWriterScript, filepath.Join(m.Mnt, "acks.db"), "1", "wal")
	var werr syncBuffer
	w.Stderr = &werr
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.ProcessState == nil {
			w.Process.Kill()
			w.Wait()
		}
	})
	var maxAck atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64); err == nil {
				maxAck.Store(n)
			}
		}
	}()
	// waitAcks waits until the writer acknowledged more than n commits.
	waitAcks := func(n int64, within time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for maxAck.Load() <= n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no commit acknowledged beyond %d within %s (writer: %s)\nmount log:\n%s", what, n, within, werr.String(), m.log)
			}
			time.Sleep(10 * time.Millisecond) // poll the writer's progress
		}
	}

	waitAcks(100, 30*time.Second, "before the outage")
	srv.Stop()
	stopped := time.Now()
	before := maxAck.Load()
	// The app must keep committing through the whole outage: some progress
	// in every second of it.
	for time.Since(stopped) < outage {
		n := maxAck.Load()
		waitAcks(n, time.Second+500*time.Millisecond, "during the outage")
		time.Sleep(min(time.Second, outage-time.Since(stopped))) // the outage itself
	}
	during := maxAck.Load() - before
	if !strings.Contains(m.log.String(), "store unreachable") {
		t.Errorf("walfs never found the store unreachable: the outage was not observed\n%s", m.log)
	}
	srv.Restart(t)
	down := time.Since(stopped)
	waitAcks(maxAck.Load(), 10*time.Second, "after the outage")

	w.Process.Kill()
	w.Wait()
	<-readerDone
	acked := maxAck.Load()
	m.Sync()
	m.Unmount()

	restored := restoreToEnv(t, env, s3URL(srv, "outage/acks.db"))
	got := strings.TrimSpace(py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
n = int(sys.argv[2])
print(c.execute("select count(*) from (with recursive s(i) as (select 1 union all select i+1 from s where i < ?) select i from s where i not in (select id from acks))", (n,)).fetchone()[0])
`, restored, strconv.FormatInt(acked, 10)))
	if got != "0" {
		t.Fatalf("%s of %d acknowledged commits are missing from the replica after a %s outage", got, acked, down.Round(time.Millisecond))
	}
	t.Logf("store down for %s: %d commits acknowledged during the outage, %d in all, every one restored", down.Round(time.Millisecond), during, acked)
}
