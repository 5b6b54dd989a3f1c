package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// modeCase drives SQLite through a mount in one of the modes real apps use;
// afterwards the mount is unmounted and every database in dbs must restore
// to exactly its live content.
type modeCase struct {
	name string
	// script runs with argv[1] = the mount point, argv[2] = a directory
	// outside the mount.
	script string
	dbs    []string
	// check runs after the comparison, with the data dir and the restored
	// copies by database name.
	check func(t *testing.T, dataDir, outside string, restored map[string]string)
}

// modesPrelude is prepended to every script.
const modesPrelude = `
import sqlite3, sys, os
mnt, outside = sys.argv[1], sys.argv[2]
def connect(name, **kw):
    c = sqlite3.connect(os.path.join(mnt, name), isolation_level=None, **kw)
    c.execute("pragma journal_mode=wal")
    return c
def fill(c, n, size=300, table="t"):
    c.execute("create table if not exists %s(id integer primary key, v blob)" % table)
    c.execute("begin")
    for i in range(n):
        c.execute("insert into %s(v) values (randomblob(?))" % table, (size,))
    c.execute("commit")
`

func TestSQLiteModes(t *testing.T) {
	cases := []modeCase{
		{
			name: "locking_mode exclusive",
			script: `
c = sqlite3.connect(os.path.join(mnt, "app.db"), isolation_level=None)
c.execute("pragma locking_mode=exclusive")
c.execute("pragma journal_mode=wal")
for i in range(20):
    fill(c, 50)
c.execute("update t set v = randomblob(100) where id % 3 = 0")
assert not os.path.exists(os.path.join(mnt, "app.db-shm")), "exclusive mode made a -shm"
c.execute("pragma wal_checkpoint(TRUNCATE)")
fill(c, 10)
c.close()
`,
			dbs: []string{"app.db"},
		},
		{
			name: "page_size 65536",
			script: `
c = sqlite3.connect(os.path.join(mnt, "big-pages.db"), isolation_level=None)
c.execute("pragma page_size=65536")
c.execute("pragma journal_mode=wal")
for i in range(10):
    fill(c, 40, size=5000)
c.execute("delete from t where id % 2 = 0")
c.execute("pragma wal_checkpoint(TRUNCATE)")
fill(c, 5, size=70000)
assert c.execute("pragma page_size").fetchone()[0] == 65536
c.close()
`,
			dbs: []string{"big-pages.db"},
			check: func(t *testing.T, _, _ string, restored map[string]string) {
				if got := strings.TrimSpace(py(t, `import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("pragma page_size").fetchone()[0])`, restored["big-pages.db"])); got != "65536" {
					t.Errorf("restored page size %s, want 65536", got)
				}
			},
		},
		{
			name: "vacuum",
			script: `
c = connect("app.db")
for i in range(10):
    fill(c, 100, size=1000)
c.execute("delete from t where id % 4 != 0")
c.execute("vacuum")
fill(c, 10)
c.execute("pragma wal_checkpoint(TRUNCATE)")
c.execute("vacuum")
c.execute("pragma auto_vacuum=incremental")
c.execute("vacuum")
c.execute("delete from t where id % 8 = 0")
c.execute("pragma incremental_vacuum")
c.close()
`,
			dbs: []string{"app.db"},
		},
		{
			name: "vacuum into",
			script: `
c = connect("app.db")
for i in range(5):
    fill(c, 100, size=1000)
c.execute("delete from t where id % 3 = 0")
c.execute("vacuum into ?", (os.path.join(mnt, "copy.db"),))
c.execute("vacuum into ?", (os.path.join(outside, "outside.db"),))
c.close()
# The copy inside the mount becomes a database of its own once written.
c = connect("copy.db")
fill(c, 10)
c.close()
`,
			dbs: []string{"app.db", "copy.db"},
			check: func(t *testing.T, _, outside string, restored map[string]string) {
				requireSameDB(t, filepath.Join(outside, "outside.db"), restored["app.db"])
			},
		},
		{
			name: "journal_size_limit",
			script: `
c = connect("app.db")
c.execute("pragma journal_size_limit=16384")
c.execute("pragma wal_autocheckpoint=20")
for i in range(60):
    fill(c, 20, size=500)
    if i % 10 == 9:
        c.execute("pragma wal_checkpoint(PASSIVE)")
c.close()
`,
			dbs: []string{"app.db"},
		},
		{
			name: "wal_autocheckpoint 0 with a 50 MB WAL",
			script: `
c = connect("app.db")
c.execute("pragma wal_autocheckpoint=0")
for i in range(30):
    fill(c, 100, size=10000)
fill(c, 1, size=20 << 20)  # one 20 MB transaction
wal = os.path.getsize(os.path.join(mnt, "app.db-wal"))
assert wal > 45 << 20, "WAL only %d bytes" % wal
c.execute("delete from t where id % 2 = 0")
c.execute("pragma wal_checkpoint(TRUNCATE)")
fill(c, 10)
c.close()
`,
			dbs: []string{"app.db"},
		},
		{
			name: "attach two databases in one transaction",
			script: `
a = connect("a.db")
fill(a, 1)
b = connect("b.db")
fill(b, 1)
b.close()
a.execute("attach database ? as b", (os.path.join(mnt, "b.db"),))
a.execute("pragma b.journal_mode=wal")
for i in range(20):
    a.execute("begin")
    a.execute("insert into main.t(v) values (randomblob(200))")
    a.execute("insert into b.t(v) values (randomblob(300))")
    a.execute("update b.t set v = randomblob(10) where id = ?", (i,))
    a.execute("commit")
a.execute("begin")
a.execute("insert into main.t(v) values ('rolled back')")
a.execute("insert into b.t(v) values ('rolled back')")
a.execute("rollback")
a.close()
`,
			dbs: []string{"a.db", "b.db"},
		},
		{
			name: "rename and delete while mounted",
			script: `
for name in ("moved.db", "deleted.db"):
    c = connect(name)
    fill(c, 200)
    c.close()
os.rename(os.path.join(mnt, "moved.db"), os.path.join(mnt, "renamed.db"))
for suffix in ("", "-wal", "-shm"):
    p = os.path.join(mnt, "deleted.db" + suffix)
    if os.path.exists(p):
        os.remove(p)
# The renamed database is written under its new name ...
c = connect("renamed.db")
fill(c, 5)
c.close()
# ... and new databases take the old names.
for name in ("moved.db", "deleted.db"):
    c = connect(name)
    c.execute("create table fresh(x)")
    c.execute("insert into fresh values ('new database at an old name')")
    c.close()
`,
			dbs: []string{"renamed.db", "moved.db", "deleted.db"},
		},
		{
			name: "rename with the wal open",
			script: `
c = connect("live.db")
c.execute("pragma wal_autocheckpoint=0")
fill(c, 100)
# SQLite keeps its descriptors across a rename of the file under it.
os.rename(os.path.join(mnt, "live.db"), os.path.join(mnt, "elsewhere.db"))
os.rename(os.path.join(mnt, "live.db-wal"), os.path.join(mnt, "elsewhere.db-wal"))
c.close()
c = connect("elsewhere.db")
fill(c, 5)
c.close()
`,
			dbs: []string{"elsewhere.db"},
		},
		{
			name: "rollback journal with a hot journal from a crashed app",
			script: `
import subprocess
path = os.path.join(mnt, "hot.db")
c = sqlite3.connect(path, isolation_level=None)
fill(c, 200)  # DELETE mode: SQLite's default
c.close()
# An app dies in the middle of a transaction that spilled pages into the db.
subprocess.run([sys.executable, "-c", """
import sqlite3, sys, os
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma cache_size=4")
c.execute("begin")
c.execute("update t set v = randomblob(400)")
os._exit(1)
""", path], check=False)
assert os.path.exists(path + "-journal"), "no hot journal left behind"
c = sqlite3.connect(path, isolation_level=None)  # rolls the hot journal back
assert c.execute("select count(*) from t").fetchone()[0] == 200
assert not os.path.exists(path + "-journal")
fill(c, 10)
c.close()
`,
			dbs: []string{"hot.db"},
		},
		{
			name: "journal_mode memory between journaled commits",
			script: `
c = sqlite3.connect(os.path.join(mnt, "mem.db"), isolation_level=None)
c.execute("pragma journal_mode=truncate")
fill(c, 50)
c.execute("pragma journal_mode=memory")  # no journal file: walfs cannot see these commits
fill(c, 50)
c.execute("update t set v = randomblob(10) where id % 4 = 0")
c.execute("pragma journal_mode=delete")  # the next journaled commit carries them
fill(c, 5)
c.close()
`,
			dbs: []string{"mem.db"},
		},
		{
			name: "several databases at once",
			script: `
import threading
names = ["db%d.db" % i for i in range(6)] + ["sub/dir/db.db"]
os.makedirs(os.path.join(mnt, "sub", "dir"), exist_ok=True)
def work(name):
    c = connect(name, timeout=10, check_same_thread=False)
    for i in range(30):
        fill(c, 20, size=200)
    c.execute("pragma wal_checkpoint(TRUNCATE)")
    fill(c, 3)
    c.close()
ts = [threading.Thread(target=work, args=(n,)) for n in names]
[t.start() for t in ts]
[t.join() for t in ts]
`,
			dbs: []string{"db0.db", "db1.db", "db2.db", "db3.db", "db4.db", "db5.db", "sub/dir/db.db"},
		},
	}
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { runModeCase(t, c, capture) })
			}
		})
	}
}

func runModeCase(t *testing.T, c modeCase, capture string) {
	t.Helper()
	dir := t.TempDir()
	dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
	outside := filepath.Join(dir, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, dataDir, replica, "--capture", capture)
	py(t, modesPrelude+c.script, m.Mnt, outside)
	m.Unmount()
	restored := map[string]string{}
	for _, db := range c.dbs {
		restored[db] = restoreTo(t, replica+"/"+db)
		requireSameDB(t, filepath.Join(dataDir, filepath.FromSlash(db)), restored[db])
	}
	if c.check != nil {
		c.check(t, dataDir, outside, restored)
	}
}

// A database past 1 GiB has SQLite's lock-byte page at offset 0x40000000,
// a page that is never written and that page-level formats must skip. Each
// case writes 1.1 GB through the mount (a few minutes on a small machine):
// WAL mode on the passthrough path and DELETE mode on the userspace path.
func TestSQLiteLargeDatabase(t *testing.T) {
	for _, tc := range []struct{ capture, journal string }{{"passthrough", "wal"}, {"userspace", "delete"}} {
		t.Run(tc.capture+"_"+tc.journal, func(t *testing.T) { testLargeDatabase(t, tc.capture, tc.journal) })
	}
}

func testLargeDatabase(t *testing.T, capture, journal string) {
	dir := t.TempDir()
	dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
	m := startMount(t, dataDir, replica, "--capture", capture)
	start := time.Now()
	py(t, `
import sqlite3, sys, os
c = sqlite3.connect(os.path.join(sys.argv[1], "large.db"), isolation_level=None)
c.execute("pragma journal_mode=%s" % sys.argv[2])
c.execute("create table t(id integer primary key, v blob)")
c.execute("create table small(id integer primary key, v text)")
while os.path.getsize(os.path.join(sys.argv[1], "large.db")) < (1 << 30) + (64 << 20):
    c.execute("begin")
    for i in range(200):
        c.execute("insert into t(v) values (randomblob(65000))")
    c.execute("insert into small(v) values ('after ' || (select count(*) from t))")
    c.execute("commit")
# Change pages on both sides of the lock page after it exists.
c.execute("update t set v = randomblob(65000) where id % 1000 = 0")
c.execute("update small set v = v || '!'")
c.execute("pragma wal_checkpoint(TRUNCATE)")
c.execute("insert into small(v) values ('last')")
c.close()
`, m.Mnt, journal)
	wrote := time.Since(start)
	m.Unmount()
	flushed := time.Since(start)
	restored := restoreTo(t, replica+"/large.db")
	restoreTook := time.Since(start) - flushed
	live := filepath.Join(dataDir, "large.db")
	const digest = `
import sqlite3, sys, hashlib
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("pragma integrity_check").fetchone()[0])
print(c.execute("pragma page_count").fetchone()[0] * c.execute("pragma page_size").fetchone()[0])
for table in ("t", "small"):
    h = hashlib.sha256()
    for row in c.execute("select id, v from %s order by id" % table):
        h.update(repr(row).encode())
    print(table, h.hexdigest())
`
	want, got := py(t, digest, live), py(t, digest, restored)
	if !strings.HasPrefix(want, "ok\n") || got != want {
		t.Fatalf("live:\n%s\nrestored:\n%s", want, got)
	}
	t.Logf("large db (%s bytes): written through the mount in %s, flushed by %s, restored in %s",
		strings.Fields(want)[1], wrote.Round(time.Second), flushed.Round(time.Second), restoreTook.Round(time.Second))
}
