package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// litestreamConfig replicates one database to MinIO with Litestream's
// compaction squeezed from 30 s / 5 min / 1 h into seconds, a snapshot every
// few seconds (so the replica holds mid-life snapshots), L0 files deleted
// one second after they reach L1 (as in production, only later), and
// checkpoints every two seconds.
const litestreamConfig = `
levels:
  - interval: 1s
  - interval: 2s
  - interval: 3s
snapshot:
  interval: 4s
  retention: 1h
l0-retention: 1s
l0-retention-check-interval: 500ms
logging:
  level: debug
dbs:
  - path: %s
    monitor-interval: 100ms
    checkpoint-interval: 2s
    min-checkpoint-page-count: 50
    replica:
      url: %s
      sync-interval: 200ms
`

// litestreamProc is a running `litestream replicate`.
type litestreamProc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

// startLitestream runs the real Litestream v0.5.18 replicating dbPath to
// path in the server's bucket.
func startLitestream(t *testing.T, srv *testserver.Server, dbPath, path string) *litestreamProc {
	t.Helper()
	bin := testserver.Tool(t, "litestream")
	cfg := filepath.Join(t.TempDir(), "litestream.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, litestreamConfig, dbPath, s3URL(srv, path)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &litestreamProc{log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "replicate", "-config", cfg)
	p.cmd.Env = litestreamEnv(srv)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start litestream: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("litestream log:\n%s", p.log)
		}
	})
	return p
}

// stop sends SIGTERM (Litestream syncs what is left, then exits) and waits.
func (p *litestreamProc) stop(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("litestream replicate exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
		t.Errorf("litestream replicate did not exit within 30s of SIGTERM")
	}
}

// lsWorkloadScript commits transactions into a WAL-mode database for argv[2]
// seconds, numbering them from argv[3]+1 (default 1). Transaction k inserts row k, appends to row k/2 and, every tenth,
// deletes row k-5, so the content after K transactions is a function of K
// alone (lsCheckScript recomputes it). ts is the wall time before the commit.
// It prints "MID <unix time>" halfway and "N <transactions>" at the end.
const lsWorkloadScript = `
import sqlite3, sys, time, hashlib
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("pragma journal_mode=wal")
c.execute("pragma busy_timeout=30000")
c.execute("create table if not exists t(id integer primary key, v text, ts real)")
def payload(k):
    return (hashlib.sha256(str(k).encode()).hexdigest() + " ") * (1 + k % 12)
dur = float(sys.argv[2]); start = time.time(); mid = False
k = int(sys.argv[3]) if len(sys.argv) > 3 else 0
while time.time() - start < dur:
    k += 1
    c.execute("begin immediate")
    c.execute("insert into t(id, v, ts) values (?, ?, ?)", (k, payload(k), time.time()))
    c.execute("update t set v = v || 'u' where id = ?", (k // 2,))
    if k % 10 == 0:
        c.execute("delete from t where id = ?", (k - 5,))
    c.execute("commit")
    if not mid and time.time() - start >= dur / 2:
        mid = True
        time.sleep(0.3)
        print("MID %.6f" % time.time(), flush=True)
        time.sleep(0.3)
    time.sleep(0.01)
c.close()
print("N %d" % k)
`

// runWorkload runs lsWorkloadScript on db for secs seconds after after
// transactions and returns the time it printed halfway and the number of
// the last transaction.
func runWorkload(t *testing.T, db string, secs float64, after int) (mid float64, n int) {
	t.Helper()
	out := py(t, lsWorkloadScript, db, fmt.Sprint(secs), strconv.Itoa(after))
	for _, line := range strings.Split(out, "\n") {
		fmt.Sscanf(line, "MID %f", &mid)
		fmt.Sscanf(line, "N %d", &n)
	}
	if mid == 0 || n <= after {
		t.Fatalf("workload output %q", out)
	}
	return mid, n
}

// lsCheckScript checks that a database holds exactly the workload's content
// after some number K of transactions and prints "K <K> MAXTS <ts>".
const lsCheckScript = `
import sqlite3, sys, hashlib
def payload(k):
    return (hashlib.sha256(str(k).encode()).hexdigest() + " ") * (1 + k % 12)
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
got = {i: v for i, v in c.execute("select id, v from t")}
K = max(got) if got else 0
want = {}
for k in range(1, K + 1):
    want[k] = payload(k)
    if k // 2 in want:
        want[k // 2] += "u"
    if k % 10 == 0:
        want.pop(k - 5, None)
if got != want:
    bad = sorted(set(got) ^ set(want)) + sorted(i for i in got if i in want and got[i] != want[i])
    sys.exit("content is not the workload after %d transactions; first differing rows: %s" % (K, bad[:5]))
print("K %d MAXTS %.6f" % (K, c.execute("select coalesce(max(ts), 0) from t").fetchone()[0]))
`

// checkWorkload checks path holds the workload after K transactions and
// returns K and the largest ts.
func checkWorkload(t *testing.T, path string) (int, float64) {
	t.Helper()
	var k int
	var maxTS float64
	out := py(t, lsCheckScript, path)
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "K %d MAXTS %f", &k, &maxTS); err != nil {
		t.Fatalf("check %s: %q: %v", path, out, err)
	}
	return k, maxTS
}

// litestreamRestoreArgs is litestreamRestore with extra flags.
func litestreamRestoreArgs(t *testing.T, srv *testserver.Server, path string, extra ...string) string {
	t.Helper()
	bin := testserver.Tool(t, "litestream")
	out := filepath.Join(t.TempDir(), "litestream.db")
	args := append([]string{"restore", "-o", out}, extra...)
	cmd := exec.Command(bin, append(args, s3URL(srv, path))...)
	cmd.Env = litestreamEnv(srv)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("litestream restore %v %s: %v\n%s", extra, path, err, o)
	}
	return out
}

// lsLevel is one level of `walfs ls --json` of a database.
type lsLevel struct {
	Level   int `json:"level"`
	Objects []struct {
		Key       string    `json:"key"`
		MinTXID   uint64    `json:"min_txid"`
		MaxTXID   uint64    `json:"max_txid"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"objects"`
}

// walfsLevels runs `walfs ls --json` on the URL of one database.
func walfsLevels(t *testing.T, env []string, url string) map[int]lsLevel {
	t.Helper()
	out, err := walfsStdout(t, env, "ls", "--json", url)
	if err != nil {
		t.Fatalf("walfs ls %s: %v", url, err)
	}
	var ls struct {
		Levels []lsLevel `json:"levels"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("walfs ls --json: %v\n%s", err, out)
	}
	levels := map[int]lsLevel{}
	for _, l := range ls.Levels {
		levels[l.Level] = l
	}
	return levels
}

// walfs restores a replica written by the real `litestream replicate`
// v0.5.18 after Litestream's compaction into levels 1..3, its snapshots and
// its deletion of compacted L0 files have run: the latest state equals the
// source, and a TXID and a timestamp in the middle land on the same state
// `litestream restore` gives.
func TestLitestreamReplicaRestoresWithWalfs(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	src := filepath.Join(t.TempDir(), "src.db")
	const path = "ls/src.db"
	url := s3URL(srv, path)

	ls := startLitestream(t, srv, src, path)
	mid, n := runWorkload(t, src, 8, 0)
	// Let one more round of compaction and L0 deletion run, then stop
	// cleanly: Litestream syncs what is left on SIGTERM.
	time.Sleep(3500 * time.Millisecond)
	ls.stop(t)
	t.Logf("workload: %d transactions", n)

	levels := walfsLevels(t, env, url)
	for _, lvl := range []int{0, 1, 2, 3, 9} {
		t.Logf("level %d: %d objects", lvl, len(levels[lvl].Objects))
	}
	for _, lvl := range []int{1, 2, 3, 9} {
		if len(levels[lvl].Objects) == 0 {
			t.Fatalf("Litestream wrote no level-%d objects; compaction did not run\n%s", lvl, ls.log)
		}
	}
	if len(levels[9].Objects) < 2 {
		t.Errorf("want a mid-life snapshot besides the first; level 9 holds %d", len(levels[9].Objects))
	}

	// Latest: the source database, and the same as Litestream restores.
	k, _ := checkWorkload(t, src)
	if k != n {
		t.Fatalf("source holds %d transactions, workload made %d", k, n)
	}
	latest := restoreToEnv(t, env, url)
	requireSameDB(t, src, latest)
	requireSameDB(t, litestreamRestore(t, srv, path), latest)

	// A TXID in the middle: the end of an L1 file halfway through that no
	// snapshot ends at, so the plan needs compacted files (the L0 files
	// were deleted).
	snapEnds := map[uint64]bool{}
	for _, o := range levels[9].Objects {
		snapEnds[o.MaxTXID] = true
	}
	l1 := levels[1].Objects
	i := len(l1) / 2
	for i < len(l1)-1 && snapEnds[l1[i].MaxTXID] {
		i++
	}
	txid := l1[i].MaxTXID
	plan, err := walfsStdout(t, env, "restore", "--dry-run", "--json", "--txid", strconv.FormatUint(txid, 10), url)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, `"level": 1,`) && !strings.Contains(plan, `"level": 2,`) && !strings.Contains(plan, `"level": 3,`) {
		t.Errorf("plan for TXID %d uses no compacted file:\n%s", txid, plan)
	}
	if out, err := walfsStdout(t, env, "restore", "--dry-run", "--txid", strconv.FormatUint(txid, 10), url); err == nil {
		t.Logf("walfs restore --dry-run --txid %d of a Litestream replica:\n%s", txid, out)
	}
	atTXID := restoreToEnv(t, env, url, "--txid", strconv.FormatUint(txid, 10))
	kTXID, _ := checkWorkload(t, atTXID)
	requireSameDB(t, litestreamRestoreArgs(t, srv, path, "-txid", fmt.Sprintf("%016x", txid)), atTXID)
	if kTXID == 0 || kTXID >= n {
		t.Errorf("restore at TXID %d holds %d of %d transactions, want some in the middle", txid, kTXID, n)
	}

	// A timestamp in the middle: nothing committed after it, nearly
	// everything committed well before it.
	ts := time.Unix(0, int64(mid*1e9)).UTC()
	atTS := restoreToEnv(t, env, url, "--timestamp", ts.Format(time.RFC3339Nano))
	kTS, maxTS := checkWorkload(t, atTS)
	if maxTS > mid {
		t.Errorf("restore at %s holds a row written at %.3f, after the target", ts.Format(time.RFC3339Nano), maxTS)
	}
	if kTS == 0 || maxTS < mid-5 {
		t.Errorf("restore at %s holds %d transactions, the newest written at %.3f; want those up to a few seconds before", ts.Format(time.RFC3339Nano), kTS, maxTS)
	}
	lsTS := litestreamRestoreArgs(t, srv, path, "-timestamp", ts.Format(time.RFC3339Nano))
	if kLS, _ := checkWorkload(t, lsTS); kLS != kTS {
		t.Logf("at %s: walfs restored %d transactions, litestream %d", ts.Format(time.RFC3339Nano), kTS, kLS)
	}
	t.Logf("TXID %d: %d transactions; timestamp %s: %d transactions (of %d)", txid, kTXID, ts.Format(time.RFC3339Nano), kTS, n)
}
