package integration

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// walIndexWorker is one process of TestWALIndexCapture. argv: path, worker
// number, iterations, locking mode. It commits 1-row transactions, now and
// then a big one that spills SQLite's cache into the WAL before it commits,
// a savepoint rolled back, a transaction rolled back and a checkpoint, and
// prints the rows it committed.
const walIndexWorker = `
import sqlite3, sys, random, json
path, w, n, locking = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(w)
c = sqlite3.connect(path, timeout=30, isolation_level=None)
c.execute("pragma locking_mode=%s" % locking)
c.execute("pragma cache_size=20")
assert c.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
inserted = 0
for i in range(n):
    r = i % 50
    if r == 10:
        c.execute("begin immediate")
        for _ in range(300):
            c.execute("insert into t(w, v) values (?, randomblob(?))", (w, rnd.randint(500, 2000)))
        c.execute("commit")
        inserted += 300
    elif r == 20:
        c.execute("begin immediate")
        c.execute("insert into t(w, v) values (?, randomblob(100))", (w,))
        c.execute("savepoint a")
        for _ in range(100):
            c.execute("insert into t(w, v) values (?, randomblob(1500))", (w,))
        c.execute("rollback to a")
        c.execute("commit")
        inserted += 1
    elif r == 30:
        c.execute("begin immediate")
        for _ in range(100):
            c.execute("insert into t(w, v) values (?, randomblob(1500))", (w,))
        c.execute("rollback")
    elif r == 40:
        c.execute("pragma wal_checkpoint(%s)" % rnd.choice(["passive", "restart", "truncate"])).fetchone()
    else:
        c.execute("insert into t(w, v) values (?, randomblob(?))", (w, rnd.randint(10, 300)))
        inserted += 1
print(json.dumps({"worker": w, "inserted": inserted}))
`

// The capture takes committed WAL frames on the word of SQLite's wal-index
// (-shm) in passthrough mode, reading only each page's newest frame (the
// wal-index rule, wal/indexed.go). Here three processes write one WAL
// database through a real mount: 1-row commits, big transactions that spill
// into the WAL, savepoints and transactions rolled back, checkpoints of
// every kind. The replica's latest point must be the live database, walfs
// verify must agree, and the mount must have used the wal-index (status)
// without refusing one. A database in locking_mode=EXCLUSIVE keeps its
// wal-index in heap memory (no -shm file): every frame is read, with the same
// result.
func TestWALIndexCapture(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
	m := startMount(t, dataDir, replica, "--capture", "passthrough")
	for _, tc := range []struct {
		db, locking string
		procs       int
	}{{"shared.db", "normal", 3}, {"exclusive.db", "exclusive", 1}} {
		path := filepath.Join(m.Mnt, tc.db)
		py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table t(id integer primary key, w integer, v blob)")
c.execute("create index t_w on t(w)")
`, path)
		out := py(t, `
import subprocess, sys, json
path, procs, worker, locking = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ps = [subprocess.Popen([sys.executable, "-c", worker, path, str(i), "400", locking], stdout=subprocess.PIPE, text=True) for i in range(procs)]
reps = []
for p in ps:
    out, _ = p.communicate()
    if p.returncode != 0:
        sys.exit("worker exited %d" % p.returncode)
    reps.append(json.loads(out))
print(json.dumps(reps))
`, path, strconv.Itoa(tc.procs), walIndexWorker, tc.locking)
		var reps []struct{ Worker, Inserted int }
		if err := json.Unmarshal([]byte(out), &reps); err != nil {
			t.Fatalf("%s: %v\n%s", tc.db, err, out)
		}
		for _, r := range reps {
			got := py(t, `
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t where w = ?", (int(sys.argv[2]),)).fetchone()[0])
`, path, strconv.Itoa(r.Worker))
			if n, err := strconv.Atoi(strings.TrimSpace(got)); err != nil || n != r.Inserted {
				t.Errorf("%s: worker %d committed %d rows, the table holds %s", tc.db, r.Worker, r.Inserted, got)
			}
		}
	}
	m.Sync()
	var shared, exclusive map[string]any
	out, err := runWalfs(t, "status", "--json", m.Mnt)
	if err != nil {
		t.Fatalf("walfs status: %v\n%s", err, out)
	}
	var reps []struct {
		Databases []map[string]any `json:"databases"`
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("walfs status --json: %v\n%s", err, out)
	}
	for _, d := range reps[0].Databases {
		switch d["db"] {
		case "shared.db":
			shared = d
		case "exclusive.db":
			exclusive = d
		}
	}
	if shared == nil || exclusive == nil {
		t.Fatalf("status lacks a database:\n%s", out)
	}
	frames, _ := shared["wal_index_frames"].(float64)
	t.Logf("shared.db: %v frames taken from the wal-index, %v transactions captured", frames, shared["transactions_captured"])
	if frames == 0 {
		t.Errorf("shared.db: no frame was taken from the wal-index: %v", shared)
	}
	for name, d := range map[string]map[string]any{"shared.db": shared, "exclusive.db": exclusive} {
		if r, ok := d["wal_index_refused"]; ok {
			t.Errorf("%s: a wal-index SQLite wrote was refused %v times", name, r)
		}
	}
	if f, ok := exclusive["wal_index_frames"]; ok {
		t.Errorf("exclusive.db: %v frames taken from a wal-index SQLite kept in heap memory", f)
	}
	// Every transaction SQLite committed was captured as it committed: no
	// snapshot had to catch up with the files. SQLite 3.40 leaves a commit
	// frame zeroed after a savepoint rollback (wal/doc.go); the checksum
	// path cannot take that transaction until the WAL restarts, and the
	// database file then differs from what was captured at the next
	// checkpoint.
	for _, bad := range []string{"changed outside SQLite's protocol", "did not write", "writing a snapshot"} {
		if strings.Contains(m.log.String(), bad) {
			t.Errorf("the mount log says %q: the capture fell behind SQLite", bad)
		}
	}
	if out, err := runWalfs(t, "verify", m.Mnt); err != nil {
		t.Errorf("walfs verify: %v\n%s", err, out)
	}
	for _, db := range []string{"shared.db", "exclusive.db"} {
		requireSameDB(t, filepath.Join(m.Mnt, db), restoreTo(t, replica+"/"+db))
	}
	m.Unmount()
}
