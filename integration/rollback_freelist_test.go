package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// freeListScript is one step of a rollback-journal workload that reuses
// free-list pages heavily: SQLite does not journal a free-list leaf it
// reuses, and a leaf reused and freed again inside one transaction (a
// savepoint open, or the cache spilled) reaches the file while staying on
// the free list. argv: path step journal (delete, truncate, persist or
// exclusive: delete with locking_mode=exclusive).
const freeListScript = `
import sqlite3, sys, random
path, step, journal = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(step)
c = sqlite3.connect(path, isolation_level=None)
if journal == "exclusive":
    c.execute("pragma locking_mode=exclusive")
c.execute("pragma journal_mode=%s" % ("delete" if journal == "exclusive" else journal))
c.execute("pragma cache_size=%d" % rnd.choice([8, 2000]))
if step == 0:
    c.execute("pragma page_size=1024")
    c.execute("create table t(id integer primary key, k integer, v blob)")
    c.execute("create index t_k on t(k)")
    c.execute("begin")
    for i in range(3000):
        c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(100, 1500)))
    c.execute("commit")
    c.execute("delete from t where id % 3 != 0")  # a long free list
else:
    c.execute("begin")
    for i in range(rnd.randint(1, 200)):  # reuse free leaves
        c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(10, 2500)))
    c.execute("savepoint a")  # reuse, then free again with a savepoint open
    for i in range(rnd.randint(1, 100)):
        c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(500, 3000)))
    c.execute("delete from t where id > (select max(id) from t) - ?", (rnd.randint(1, 120),))
    c.execute("release a")
    c.execute("delete from t where k %% %d = %d" % (rnd.randint(5, 20), rnd.randint(0, 4)))
    c.execute("commit")
    if rnd.random() < 0.3:
        c.execute("update t set v = randomblob(length(v) / 2 + 1) where k % 7 = 0")  # autocommit
print(c.execute("pragma freelist_count").fetchone()[0])
c.close()
`

// TestRollbackFreeListReuse drives the free-list reuse that a rollback
// journal does not show through the mount in every rollback-journal mode,
// on the kernel's fast path (passthrough) and through walfs (userspace), and
// after every step requires the restored database to be byte for byte the
// live one: free pages included, since walfs verify compares every byte.
func TestRollbackFreeListReuse(t *testing.T) {
	steps := 8
	if testing.Short() {
		steps = 4
	}
	for _, tc := range []struct{ capture, journal string }{
		{"passthrough", "delete"}, {"passthrough", "truncate"}, {"passthrough", "persist"},
		{"passthrough", "exclusive"}, {"userspace", "delete"},
	} {
		t.Run(tc.capture+"_"+tc.journal, func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
			m := startMount(t, dataDir, "file://"+replicaDir, "--sync-interval", "50ms", "--capture", tc.capture)
			db := filepath.Join(m.Mnt, "free.db")
			for step := 0; step < steps; step++ {
				free := strings.TrimSpace(py(t, freeListScript, db, fmt.Sprint(step), tc.journal))
				m.Sync()
				restored := restoreTo(t, "file://"+replicaDir+"/free.db")
				live, err := os.ReadFile(filepath.Join(dataDir, "free.db"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(restored)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(live, got) {
					t.Fatalf("step %d (%s free pages): restored database differs from the live one: %s", step, free, pageDiff(live, got, 1024))
				}
				t.Logf("step %d ok: %s free pages", step, free)
			}
			requireLines(t, walfsLines(t, 0, "verify", m.Mnt), map[string]string{db: "equal at TXID"})
			log := m.log.String()
			if strings.Contains(log, "without a journal file") {
				t.Errorf("journal-less commits reported where every commit had a journal")
			}
			if served := strings.Contains(log, "database file served by the kernel"); served != (tc.capture == "passthrough") {
				t.Errorf("database served by the kernel: %v, want %v", served, tc.capture == "passthrough")
			}
			m.Unmount()
		})
	}
}

// pageDiff names the pages at which two database images differ.
func pageDiff(a, b []byte, pageSize int) string {
	if len(a) != len(b) {
		return fmt.Sprintf("sizes %d and %d", len(a), len(b))
	}
	var pages []string
	for off := 0; off < len(a); off += pageSize {
		if !bytes.Equal(a[off:off+pageSize], b[off:off+pageSize]) {
			pages = append(pages, fmt.Sprint(off/pageSize+1))
		}
	}
	return "pages " + strings.Join(pages, " ")
}

// TestRollbackJournalLessCommit: commits in journal_mode=MEMORY write no
// journal, so walfs cannot see them end; on the passthrough path it does not
// see their writes either. The next journaled commit finds the file changed
// since the last commit it captured (page 1's change counter) and ships the
// difference: walfs verify, which reconciles nothing first, finds the
// replica equal to the live database right after.
func TestRollbackJournalLessCommit(t *testing.T) {
	dir := t.TempDir()
	dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
	m := startMount(t, dataDir, "file://"+replicaDir, "--capture", "passthrough")
	db := filepath.Join(m.Mnt, "mem.db")
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("create table t(id integer primary key, v blob)")
c.execute("insert into t(v) values (randomblob(100))")
c.close()
`, db)
	m.Sync() // done with the new file's reconcile, which would ship the commits below too
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)  # the kernel serves this handle
c.execute("pragma journal_mode=memory")
for i in range(30):
    c.execute("insert into t(v) values (randomblob(900))")
c.execute("pragma journal_mode=delete")
c.execute("insert into t(v) values (randomblob(10))")  # journaled: carries the others
c.close()
`, db)
	requireLines(t, walfsLines(t, 0, "verify", "--no-repair", m.Mnt), map[string]string{db: "equal at TXID"})
	log := m.log.String()
	if !strings.Contains(log, "database file served by the kernel") {
		t.Errorf("the database handle was not passed through to the kernel")
	}
	if !strings.Contains(log, "without a journal file") {
		t.Errorf("the journal-less commits were not reported")
	}
	m.Unmount()
}
