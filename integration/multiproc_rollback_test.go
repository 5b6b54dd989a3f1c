package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// multiProcWorker is one process of TestMultiProcessRollback. argv: path,
// worker number, iterations, mmap (1 or 0). It prints one JSON line: the rows
// it committed and the error that stopped it, if any.
const multiProcWorker = `
import sqlite3, sys, random, json
path, w, n, mmap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
rnd = random.Random(w)
c = sqlite3.connect(path, timeout=10, isolation_level=None)
if mmap:
    c.execute("pragma mmap_size=268435456")
inserted, err = 0, None
try:
    assert c.execute("pragma journal_mode").fetchone()[0] == "delete"
    for i in range(n):
        if i % 3 == 0:  # a one-statement transaction
            c.execute("insert into t(w, v) values (?, randomblob(?))", (w, rnd.randint(10, 400)))
            inserted += 1
        elif i % 3 == 1:  # several statements, the write lock taken up front
            k = rnd.randint(1, 5)
            c.execute("begin immediate")
            for _ in range(k):
                c.execute("insert into t(w, v) values (?, randomblob(?))", (w, rnd.randint(10, 400)))
            c.execute("update t set v = randomblob(?) where id = ?", (rnd.randint(10, 400), rnd.randint(1, 100)))
            c.execute("commit")
            inserted += k
        else:
            c.execute("update t set v = randomblob(?) where w = ? and id % 7 = ?", (rnd.randint(10, 400), w, rnd.randint(0, 6)))
        # reads between the writes, as an application's would
        c.execute("select count(*), max(id) from t").fetchone()
        c.execute("select id, length(v) from t where w = ? order by id desc limit 20", (w,)).fetchall()
except sqlite3.Error as e:
    err = str(e)
print(json.dumps({"worker": w, "inserted": inserted, "error": err}))
`

// multiProcDriver creates the database and runs the workers as separate
// processes. argv: path, page size, processes, iterations, worker script.
// It prints JSON: each worker's report and the rows each left in the table.
const multiProcDriver = `
import sqlite3, subprocess, sys, json
path, page_size, procs, n, worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = sqlite3.connect(path, isolation_level=None)
c.execute("pragma page_size=%d" % page_size)
c.execute("pragma journal_mode=delete")
c.execute("create table t(id integer primary key, w integer, v blob)")
c.execute("create index t_w on t(w)")
c.close()
ps = [subprocess.Popen([sys.executable, "-c", worker, path, str(i), n, "1" if i % 2 == 0 else "0"],
                       stdout=subprocess.PIPE, text=True) for i in range(procs)]
reports = []
for p in ps:
    out, _ = p.communicate()
    reports.append(json.loads(out) if p.returncode == 0 else {"worker": -1, "inserted": 0, "error": "exit %d" % p.returncode})
c = sqlite3.connect(path)
rows = {str(w): k for w, k in c.execute("select w, count(*) from t group by w")}
print(json.dumps({"page_size": c.execute("pragma page_size").fetchone()[0], "reports": reports, "rows": rows}))
`

// Five processes write one DELETE-mode database through the mount, some of
// them with mmap, each with SQLite's busy timeout at 10 s. As on the disk,
// every process must finish (none gives up with "database is locked"), the
// table must hold exactly the rows each committed, and the replica's latest
// point must be the database they leave. A mount that holds SQLite's locks
// much longer than the disk does (it once re-read the database through
// walfs after every commit) makes a process wait out its busy timeout.
func TestMultiProcessRollback(t *testing.T) {
	const procs, iterations = 5, 60
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
			m := startMount(t, dataDir, replica, "--capture", capture)
			var dbs []string
			for _, pageSize := range []int{512, 4096, 65536} {
				db := fmt.Sprintf("multi-%d.db", pageSize)
				dbs = append(dbs, db)
				out := py(t, multiProcDriver, filepath.Join(m.Mnt, db), strconv.Itoa(pageSize),
					strconv.Itoa(procs), strconv.Itoa(iterations), multiProcWorker)
				var got struct {
					PageSize int `json:"page_size"`
					Reports  []struct {
						Worker   int     `json:"worker"`
						Inserted int     `json:"inserted"`
						Error    *string `json:"error"`
					} `json:"reports"`
					Rows map[string]int `json:"rows"`
				}
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("%s: %v\n%s", db, err, out)
				}
				if got.PageSize != pageSize {
					t.Errorf("%s: page size %d, want %d", db, got.PageSize, pageSize)
				}
				if len(got.Reports) != procs {
					t.Fatalf("%s: %d workers reported, want %d\n%s", db, len(got.Reports), procs, out)
				}
				for _, r := range got.Reports {
					if r.Error != nil {
						t.Errorf("%s: worker %d stopped after %d rows: %s", db, r.Worker, r.Inserted, *r.Error)
						continue
					}
					if rows := got.Rows[strconv.Itoa(r.Worker)]; rows != r.Inserted {
						t.Errorf("%s: worker %d committed %d rows, table holds %d", db, r.Worker, r.Inserted, rows)
					}
				}
			}
			m.Sync()
			for _, db := range dbs {
				requireSameDB(t, filepath.Join(m.Mnt, db), restoreTo(t, replica+"/"+db))
			}
			m.Unmount()
		})
	}
}
