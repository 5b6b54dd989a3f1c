package integration

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// storeOps returns a mount's store requests since it started, by
// operation (walfs status --json).
func storeOps(t testing.TB, mnt string) map[string]uint64 {
	t.Helper()
	out, err := runWalfs(t, "status", "--json", mnt)
	if err != nil {
		t.Fatalf("walfs status --json %s: %v\n%s", mnt, err, out)
	}
	var reps []struct {
		StoreRequests map[string]uint64 `json:"store_requests"`
		Follow        *struct {
			Polls uint64 `json:"polls"`
		} `json:"follow"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("walfs status --json %s: %v\n%s", mnt, err, out)
	}
	ops := reps[0].StoreRequests
	if f := reps[0].Follow; f != nil {
		ops["(polls)"] = f.Polls
	}
	return ops
}

// The figures the follower issue asks for, with default settings on local
// MinIO: what an idle follower costs (asserted as counts: no LIST, one
// request per poll), how long a follower takes to catch up with an hour's
// worth of uploads, and how long a takeover takes when the old primary
// cannot be proven dead (another host: here, another pid namespace), so the
// follower must wait for its lease to expire. Times are logged, never
// asserted.
func TestFollowFigures(t *testing.T) {
	requireEnv(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is needed to run the primary in its own pid namespace")
	}
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	replica := s3URL(srv, "figures")
	dataA, mntA := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "mnt")
	// The primary runs in its own pid namespace, as if on another host:
	// its lease names a pid the follower cannot check. --kill-child: a
	// kill -9 of unshare kills walfs too.
	otherHost := []string{"unshare", "--pid", "--fork", "--kill-child"}
	a := startMountWrapped(t, otherHost, env, dataA, replica, mntA, "--lease-ttl", "6s")
	db := filepath.Join(mntA, "app.db")
	insertRows(t, db, 1, 20)
	a.Sync()
	b := startFollowerAt(t, env, filepath.Join(t.TempDir(), "b"), replica, filepath.Join(t.TempDir(), "mnt"))
	waitSameDB(t, db, filepath.Join(b.Mnt, "app.db"))

	// Lag at default settings (1 s sync interval, 1 s poll): a commit on
	// the primary, then the time until a reader on the follower sees it.
	out := py(t, `
import random, sqlite3, sys, time
w = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
r = sqlite3.connect("file:" + sys.argv[2] + "?mode=ro", uri=True, isolation_level=None, timeout=30)
lags = []
for i in range(1000, 1030):
    w.execute("insert into acks(id, v) values (?, randomblob(200))", (i,))
    t0 = time.time()
    while r.execute("select count(*) from acks where id = ?", (i,)).fetchone()[0] == 0:
        time.sleep(0.005)
    lags.append(time.time() - t0)
    time.sleep(random.uniform(0, 0.5))
print(" ".join("%.4f" % x for x in lags))
`, db, filepath.Join(b.Mnt, "app.db"))
	var lags []float64
	for _, f := range strings.Fields(out) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("lag output %q", out)
		}
		lags = append(lags, x)
	}
	p50, p99 := percentiles(lags)
	t.Logf("lag at default settings over %d commits: p50 %s, p99 %s", len(lags), fmtSeconds(p50), fmtSeconds(p99))

	// Idle: one conditional GET per poll, no LIST, nothing else.
	before := storeOps(t, b.Mnt)
	time.Sleep(8 * time.Second)
	after := storeOps(t, b.Mnt)
	polls := after["(polls)"] - before["(polls)"]
	var total uint64
	for op, n := range after {
		if op == "(polls)" {
			continue
		}
		d := n - before[op]
		total += d
		if d > 0 && op != "conditional_poll" {
			t.Errorf("an idle follower sent %d %s requests", d, op)
		}
	}
	if polls == 0 || total > polls {
		t.Errorf("idle follower: %d requests in %d polls, want at most one per poll", total, polls)
	}
	t.Logf("idle follower: %d requests in %d polls (8s): %.0f requests/hour at the default 1s poll", total, polls, float64(total)/8*3600)

	// Offline for an hour's worth of uploads: at the default sync interval
	// a steadily written database uploads once a second, 3,600 files an
	// hour. The primary's sync interval is shortened to make as many in a
	// minute.
	b.Unmount()
	a.Unmount()
	a = startMountWrapped(t, otherHost, env, dataA, replica, mntA, "--lease-ttl", "6s", "--sync-interval", "10ms")
	py(t, `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("delete from acks where id >= 1000")
for i in range(21, 3621):
    c.execute("insert into acks(id, v) values (?, randomblob(200))", (i,))
    time.sleep(0.012)
`, db)
	a.Sync()
	uploads := 0
	for key := range replicaObjects(t, srv, "figures/app.db/0000/") {
		if strings.HasSuffix(key, ".ltx") {
			uploads++
		}
	}
	start := time.Now()
	b = startFollowerAt(t, env, b.DataDir, replica, b.Mnt)
	t.Logf("catch-up: %s from start to mount ready after %d commits in %d level-0 files (plus compactions) while offline",
		time.Since(start).Round(time.Millisecond), 3600, uploads)
	requireSameDB(t, db, filepath.Join(b.Mnt, "app.db"))

	// Takeover when the old primary cannot be proven dead: kill -9, then
	// promote; the follower waits for the 6 s lease to expire.
	a.Kill()
	killed := time.Now()
	clearDeadMount(t, mntA)
	promote(t, b)
	first := insertRows(t, filepath.Join(b.Mnt, "app.db"), 3621, 3621)
	t.Logf("takeover (old primary unprovably dead, lease TTL 6s): %s from kill -9 to the first commit on the new primary; with the default 30s TTL expect about 24s more",
		first.Sub(killed).Round(time.Millisecond))
	if n := missingAcks(t, filepath.Join(b.Mnt, "app.db"), 3621); n != 0 {
		t.Errorf("%d rows missing on the new primary", n)
	}
}
