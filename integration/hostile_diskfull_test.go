package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fillScript commits 20 kB rows in journal mode argv[3] until SQLite
// reports an error or argv[2] rows are in, then prints what the app saw: "acked N", the error (or
// None), the integrity check and the row count.
const fillScript = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("pragma journal_mode=%s" % sys.argv[3])
c.execute("create table if not exists t(id integer primary key, v blob)")
acked = c.execute("select count(*) from t").fetchone()[0]
err = None
for i in range(int(sys.argv[2])):
    try:
        c.execute("insert into t(v) values (randomblob(20000))")
        acked += 1
    except sqlite3.Error as e:
        err = "%s: %s" % (type(e).__name__, e)
        break
print("acked", acked)
print("error", err)
print("integrity", c.execute("pragma integrity_check").fetchone()[0])
print("count", c.execute("select count(*) from t").fetchone()[0])
c.close()
`

// fillResult is what fillScript printed.
type fillResult struct {
	acked, count int
	err, check   string
}

func fill(t *testing.T, db, journal string, rows int) fillResult {
	t.Helper()
	var r fillResult
	for _, line := range strings.Split(strings.TrimSpace(py(t, fillScript, db, strconv.Itoa(rows), journal)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "acked":
			r.acked, _ = strconv.Atoi(v)
		case "count":
			r.count, _ = strconv.Atoi(v)
		case "error":
			r.err = v
		case "integrity":
			r.check = v
		}
	}
	return r
}

// The data dir fills up: the app gets "database or disk is full", never a
// corrupt database; once space returns, the app carries on and the replica
// ends up holding every commit the app saw succeed. WAL mode on both capture
// paths, and DELETE journal mode.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct{ capture, journal string }{{"passthrough", "wal"}, {"userspace", "wal"}, {"passthrough", "delete"}} {
		capture, journal := tc.capture, tc.journal
		t.Run(capture+"_"+journal, func(t *testing.T) {
			// The file system grows: space comes back in plenty.
			t.Run("file system grown", func(t *testing.T) {
				testDiskFull(t, capture, journal, func(fsDir string) error {
					return syscall.Mount("tmpfs", fsDir, "tmpfs", syscall.MS_REMOUNT, "size=200m")
				})
			})
			// The user deletes a 6 MB file: 30% of the file system is
			// free again, more than the app wrote since the last upload.
			t.Run("file deleted", func(t *testing.T) {
				testDiskFull(t, capture, journal, func(fsDir string) error {
					return os.Remove(filepath.Join(fsDir, "filler"))
				})
			})
		})
	}
}

func testDiskFull(t *testing.T, capture, journal string, freeSpace func(fsDir string) error) {
	requireEnv(t)
	dir := t.TempDir()
	fsDir := filepath.Join(dir, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", fsDir, "tmpfs", 0, "size=20m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(fsDir, syscall.MNT_DETACH) }) // runs after the walfs mount's cleanup
	if err := os.WriteFile(filepath.Join(fsDir, "filler"), make([]byte, 6<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir, replica := filepath.Join(fsDir, "data"), "file://"+filepath.Join(dir, "replica")
	m := startMount(t, dataDir, replica, "--capture", capture)
	db := filepath.Join(m.Mnt, "app.db")

	full := fill(t, db, journal, 5000)
	t.Logf("disk full: %+v", full)
	// In DELETE mode the disk may fill just when walfs spools the commit,
	// inside SQLite's unlink of the journal; SQLite reports any failed
	// unlink as SQLITE_IOERR_DELETE. Either way the transaction rolls back.
	want := []string{"database or disk is full"}
	if journal != "wal" {
		want = append(want, "disk I/O error")
	}
	if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(full.err, w) }) {
		t.Errorf("app saw %q, want one of %q", full.err, want)
	}
	if full.check != "ok" || full.count != full.acked {
		t.Fatalf("after the failed commit: integrity %q, %d rows, %d acknowledged", full.check, full.count, full.acked)
	}

	if err := freeSpace(fsDir); err != nil {
		t.Fatal(err)
	}
	more := fill(t, db, journal, 20)
	t.Logf("space back: %+v", more)
	if more.err != "None" || more.acked != full.acked+20 || more.check != "ok" {
		t.Fatalf("after space returned the app could not carry on: %+v", more)
	}
	if out, err := runWalfs(t, "sync", "--timeout", "60s", m.Mnt); err != nil {
		t.Fatalf("walfs sync after space returned: %v\n%s", err, out)
	}
	m.Unmount()
	restored := restoreTo(t, replica+"/app.db")
	requireSameDB(t, filepath.Join(dataDir, "app.db"), restored)
	got := strings.TrimSpace(py(t, `import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0])`, restored))
	if got != strconv.Itoa(more.acked) {
		t.Fatalf("replica holds %s rows, the app saw %d commits succeed", got, more.acked)
	}
}
