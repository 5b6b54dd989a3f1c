package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// workloadScript applies one random step to a database through the mount.
// argv: path seed step page_size journal, where journal is a journal mode
// (wal, delete, truncate, persist), "exclusive" (delete with
// locking_mode=exclusive, whose commits zero the journal header), "switch"
// (a random mode at every step) or "waloff" (WAL with synchronous=OFF: no
// fsync ever tells walfs a checkpoint is under way).
const workloadScript = `
import sqlite3, sys, random
path, seed, step, page_size, journal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rnd = random.Random(seed * 1000 + step)
exclusive = journal == "exclusive"
jm = {"exclusive": "delete", "switch": rnd.choice(["wal", "delete", "truncate", "persist"]), "waloff": "wal"}.get(journal, journal)
c = sqlite3.connect(path, isolation_level=None, timeout=30)
if journal == "waloff":
    c.execute("pragma synchronous=OFF")
if exclusive:
    c.execute("pragma locking_mode=exclusive")
if step == 0:
    c.execute("pragma page_size=%d" % page_size)
c.execute("pragma journal_mode=%s" % jm)
if step == 0:
    c.execute("pragma wal_autocheckpoint=0")
    c.execute("create table t(id integer primary key, k integer, v blob)")
    c.execute("create index t_k on t(k)")
c.execute("pragma cache_size=8")  # tiny cache: large transactions spill
c2 = sqlite3.connect(path, isolation_level=None, timeout=30)
if journal == "waloff":
    c2.execute("pragma synchronous=OFF")
ops = ["mode:" + jm] if journal == "switch" else []
for _ in range(rnd.randint(1, 4)):
    op = rnd.choice(["insert", "insert", "update", "delete", "bigtxn", "rollback", "savepoint", "checkpoint", "vacuum", "two"])
    if op == "two" and exclusive:
        op = "insert"  # the first connection holds the lock until it closes
    ops.append(op)
    if op == "insert":
        c.execute("begin")
        for _ in range(rnd.randint(1, 50)):
            c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(0, 300))))
        c.execute("commit")
    elif op == "update":
        c.execute("update t set v = ?, k = k + 1 where k % ? = 0", (rnd.randbytes(50), rnd.randint(2, 9)))
    elif op == "delete":
        c.execute("delete from t where k % ? = 1", (rnd.randint(3, 11),))
    elif op == "bigtxn":
        c.execute("begin")
        for _ in range(rnd.randint(200, 600)):
            c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(100, 900))))
        c.execute("update t set k = k + 1 where id % 3 = 0")
        c.execute("commit")
    elif op == "rollback":
        c.execute("begin")
        for _ in range(rnd.randint(1, 400)):
            c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(500)))
        c.execute("rollback")
    elif op == "savepoint":
        c.execute("begin")
        c.execute("insert into t(k, v) values (1, x'01')")
        c.execute("savepoint a")
        c.execute("delete from t where id % 2 = 0")
        c.execute("rollback to a")
        c.execute("insert into t(k, v) values (2, x'02')")
        c.execute("commit")
    elif op == "checkpoint":
        mode = rnd.choice(["PASSIVE", "FULL", "RESTART", "TRUNCATE"])
        ops[-1] += ":" + mode
        c.execute("pragma wal_checkpoint(%s)" % mode)
    elif op == "vacuum":
        c.execute("vacuum")
    elif op == "two":
        c2.execute("pragma journal_mode=%s" % jm)
        c2.execute("insert into t(k, v) values (?, x'ff')", (rnd.randint(0, 1000),))
        c.execute("insert into t(k, v) values (?, x'ee')", (rnd.randint(0, 1000),))
        c2.execute("delete from t where id = (select min(id) from t)")
c2.close()
c.close()
print(" ".join(ops))
`

// TestDifferentialRandomWorkloads drives random workloads through a real
// mount and, after every step, restores the replica and compares it with the
// live database: WAL mode with both capture paths and several page sizes,
// then the rollback-journal modes and switches between modes.
func TestDifferentialRandomWorkloads(t *testing.T) {
	steps := 12
	if testing.Short() {
		steps = 4
	}
	for _, tc := range []struct {
		seed     int
		pageSize int
		capture  string
		journal  string
	}{
		{1, 4096, "passthrough", "wal"}, {2, 512, "passthrough", "wal"}, {3, 65536, "passthrough", "wal"}, {4, 1024, "passthrough", "wal"},
		{5, 4096, "userspace", "wal"}, {6, 512, "userspace", "wal"}, {7, 65536, "userspace", "wal"}, {4, 1024, "userspace", "wal"},
		{8, 4096, "passthrough", "delete"}, {9, 1024, "userspace", "truncate"}, {10, 4096, "passthrough", "persist"},
		{11, 512, "userspace", "exclusive"}, {12, 4096, "passthrough", "switch"}, {13, 4096, "userspace", "switch"},
		{14, 4096, "passthrough", "waloff"}, {15, 1024, "passthrough", "waloff"},
	} {
		t.Run(fmt.Sprintf("%s_%s_seed%d_page%d", tc.capture, tc.journal, tc.seed, tc.pageSize), func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
			m := startMount(t, dataDir, "file://"+replicaDir, "--sync-interval", "50ms", "--capture", tc.capture)
			db := filepath.Join(m.Mnt, "diff.db")
			for step := 0; step < steps; step++ {
				ops := py(t, workloadScript, db, fmt.Sprint(tc.seed), fmt.Sprint(step), fmt.Sprint(tc.pageSize), tc.journal)
				m.Sync()
				restored := restoreTo(t, "file://"+replicaDir+"/diff.db")
				a, b := dump(t, db), dump(t, restored)
				if a != b {
					t.Fatalf("step %d (%s): restore differs from live db:\n%s", step, ops, diffLines(a, b))
				}
				t.Logf("step %d ok: %s", step, ops)
			}
			// Every step after the first opens a WAL-mode database: on the
			// passthrough path those handles must have gone to the kernel,
			// or this test did not exercise the path it claims to.
			if tc.capture == "passthrough" && (tc.journal == "wal" || tc.journal == "waloff") && steps > 1 &&
				!strings.Contains(m.log.String(), "database file served by the kernel") {
				t.Errorf("no database handle was passed through to the kernel")
			}
			m.Unmount()
		})
	}
}
