package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// freeListApp is an app with one long-lived connection to a rollback-journal
// database that reuses free-list pages heavily: SQLite does not journal a
// free-list leaf it reuses, and a leaf reused after a savepoint and given
// back by ROLLBACK TO reaches the file with its new content while staying
// on the free list. The connection opens the database while
// its free list is empty, so on the passthrough path the kernel serves it
// throughout. After each step it prints the free-list size and waits for a
// line on stdin. argv: path steps journal (delete, truncate, persist;
// exclusive: delete with locking_mode=exclusive; switch: created in delete
// mode, then persist; switch_off: the same with synchronous=OFF;
// switch_limit: the same with a journal_size_limit; created: delete, and the
// connection that created the database runs every step, so on the
// passthrough path the kernel serves it from the empty file on). The
// databases created in delete mode have their journals written by the
// kernel on the passthrough path until one ends by a zeroed header.
const freeListApp = `
import sqlite3, sys, random
path, steps, journal = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mode = {"exclusive": "delete", "switch": "delete", "switch_off": "delete", "switch_limit": "delete", "created": "delete"}.get(journal, journal)
c = sqlite3.connect(path, isolation_level=None)
c.execute("pragma page_size=1024")
c.execute("pragma journal_mode=%s" % mode)
c.execute("create table t(id integer primary key, k integer, v blob)")
c.execute("create index t_k on t(k)")
if journal != "created":
    c.close()
    c = sqlite3.connect(path, isolation_level=None)
if journal == "exclusive":
    c.execute("pragma locking_mode=exclusive")
if journal.startswith("switch"):
    mode = "persist"
if journal == "switch_off":
    c.execute("pragma synchronous=off")
if journal == "switch_limit":
    c.execute("pragma journal_size_limit=8192")  # PERSIST then cuts the journal after zeroing it
c.execute("pragma journal_mode=%s" % mode)
for step in range(steps):
    rnd = random.Random(step)
    c.execute("pragma cache_size=%d" % rnd.choice([8, 2000]))
    if step == 0:
        c.execute("begin")
        for i in range(3000):
            c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(100, 1500)))
        c.execute("commit")
        c.execute("delete from t where id % 3 != 0")  # a long free list
    else:
        for i in range(rnd.randint(0, 20)):  # one-row commits
            c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(10, 2500)))
            c.execute("delete from t where id = (select min(id) from t)")
        c.execute("begin")
        for i in range(rnd.randint(1, 200)):  # reuse free leaves
            c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(10, 2500)))
        c.execute("savepoint b")
        for i in range(rnd.randint(1, 100)):
            c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(500, 3000)))
        c.execute("delete from t where id > (select max(id) from t) - ?", (rnd.randint(1, 120),))
        c.execute("release b")
        c.execute("delete from t where k %% %d = %d" % (rnd.randint(5, 20), rnd.randint(0, 4)))
        c.execute("commit")
        c.execute("begin")
        c.execute("savepoint a")  # reuse free leaves, then give them back by ROLLBACK TO
        for i in range(rnd.randint(1, 50)):
            c.execute("insert into t(k, v) values (?, randomblob(?))", (rnd.randint(0, 999), rnd.randint(10, 1000)))
        c.execute("delete from t where k % 5 = 0")
        c.execute("rollback to a")
        c.execute("release a")
        c.execute("commit")
    print(c.execute("pragma freelist_count").fetchone()[0], flush=True)
    sys.stdin.readline()
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
		{"passthrough", "exclusive"}, {"passthrough", "switch"}, {"passthrough", "switch_off"},
		{"passthrough", "switch_limit"}, {"passthrough", "created"},
		{"userspace", "delete"},
	} {
		t.Run(tc.capture+"_"+tc.journal, func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
			m := startMount(t, dataDir, "file://"+replicaDir, "--sync-interval", "50ms", "--capture", tc.capture)
			db := filepath.Join(m.Mnt, "free.db")
			app := exec.Command("python3", "-c", freeListApp, db, fmt.Sprint(steps), tc.journal)
			stdin, err := app.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := app.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			app.Stderr = os.Stderr
			if err := app.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); app.Wait() }()
			out := bufio.NewReader(stdout)
			for step := 0; step < steps; step++ {
				free, err := out.ReadString('\n')
				if err != nil {
					t.Fatalf("step %d: app: %v", step, err)
				}
				m.Sync()
				restoredEqualsLive(t, "file://"+replicaDir+"/free.db", filepath.Join(dataDir, "free.db"), 1024,
					fmt.Sprintf("step %d (%s free pages)", step, strings.TrimSpace(free)))
				t.Logf("step %d ok: %s free pages", step, strings.TrimSpace(free))
				if _, err := io.WriteString(stdin, "next\n"); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Wait(); err != nil {
				t.Fatalf("app: %v", err)
			}
			requireLines(t, walfsLines(t, 0, "verify", m.Mnt), map[string]string{db: "equal at TXID"})
			log := m.log.String()
			if strings.Contains(log, "without a journal file") || (tc.journal != "switch_off" && strings.Contains(log, "changed since the last commit walfs saw")) {
				t.Errorf("journal-less commits reported where every commit had a journal")
			}
			// Which path served the database is not asserted under passthrough:
			// the kernel serves it only when its free list was empty when it
			// was opened, which depends on the moment (seen both ways in CI).
			// Userspace capture must never hand it to the kernel.
			served := strings.Contains(log, "database file served by the kernel")
			if tc.capture != "passthrough" && served {
				t.Errorf("database served by the kernel under %s capture", tc.capture)
			}
			// The connection that created it opened an empty file: the
			// kernel serves that one whatever the moment.
			if tc.capture == "passthrough" && tc.journal == "created" && !served {
				t.Errorf("the creating connection's database file was not served by the kernel")
			}
			t.Logf("database served by the kernel: %v", served)
			// Databases created in delete mode have their next journals
			// written by the kernel; one that then ends by a zeroed header
			// is found at its sync (exclusive, switch). With synchronous=OFF
			// there is no sync: the next commit walfs sees carries it (the
			// pages written since, or page 1's change counter), or the
			// re-read the journal's release asks for; the restores above
			// are what proves it.
			zeroedAtSync := strings.Contains(log, "commit found at the sync of a zeroed journal the kernel wrote")
			switch tc.journal {
			case "exclusive", "switch", "switch_limit":
				if tc.capture == "passthrough" && !zeroedAtSync {
					t.Errorf("no commit was found at the sync of a zeroed kernel-written journal")
				}
			default:
				if zeroedAtSync {
					t.Errorf("a %s-mode journal ended by a zeroed header", tc.journal)
				}
			}
			m.Unmount()
		})
	}
}

// restoredEqualsLive restores the replica at url and fails the test unless
// it is byte for byte the live database file at live; it returns the
// restored file. when prefixes the failure.
func restoredEqualsLive(t *testing.T, url, live string, pageSize int, when string) string {
	t.Helper()
	restored := restoreTo(t, url)
	want, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(restored)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("%s: restored database differs from the live one: %s", when, pageDiff(want, got, pageSize))
	}
	return restored
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
	if !strings.Contains(log, "changed since the last commit walfs saw") {
		t.Errorf("the journal-less commits were not reported")
	}
	m.Unmount()
}
