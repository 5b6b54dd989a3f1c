package integration

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkip are posixtest cases that cannot pass on any file system.
var posixSkip = map[string]string{
	// POSIX record locks belong to the process, so a second descriptor of
	// the same process never conflicts; go-fuse leaves it out of its own
	// run too ("TODO - fix this test"). fcntlAcrossProcesses below is the
	// check that matters to SQLite.
	"FcntlFlockLocksFile": "expects two fds of one process to conflict, which POSIX locks never do",
}

// Files that are not databases behave as on a normal file system: go-fuse's
// posixtest suite, run against a real walfs mount served by the walfs binary
// (a separate process, so the test's I/O cannot deadlock the server).
func TestPosix(t *testing.T) {
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) { testPosix(t, capture) })
	}
}

func testPosix(t *testing.T, capture string) {
	dir := t.TempDir()
	m := startMount(t, filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica"), "--capture", capture)
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkip[name]; ok {
				t.Logf("not run: %s", why)
				return
			}
			sub := filepath.Join(m.Mnt, name)
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, sub)
			if err := os.RemoveAll(sub); err != nil {
				t.Errorf("clean up: %v", err)
			}
		})
	}
	t.Run("FcntlAcrossProcesses", func(t *testing.T) { fcntlAcrossProcesses(t, m.Mnt) })
	m.Unmount()
}

// fcntlAcrossProcesses checks what SQLite's locking relies on: a byte-range
// lock one process holds through the mount blocks another process, and
// only on the bytes it covers.
func fcntlAcrossProcesses(t *testing.T, mnt string) {
	got := py(t, `
import fcntl, os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)
child = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for start in (120, 121):
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, start)
        print(start, "granted")
    except OSError as e:
        print(start, "refused", e.errno)
"""
print(subprocess.run([sys.executable, "-c", child, sys.argv[1]], capture_output=True, text=True, check=True).stdout, end="")
`, filepath.Join(mnt, "locked"))
	want := "120 refused 11\n121 granted\n"
	if got != want {
		t.Fatalf("locks across processes: got\n%swant\n%s", got, want)
	}
}
