package integration

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Everything walfs writes is private: the state dir, spool, cache, lease,
// control socket and file replica keep database pages from other users
// even when walfs runs with umask 0, another user can neither read status
// nor sync nor unmount, and restores create private files.
func TestPrivateState(t *testing.T) {
	requireEnv(t)
	// walfs must never rely on the umask: a mount runs with umask 0.
	// Every walfs process this test starts inherits it.
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })

	dir := sharedDir(t)
	dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
	// An older walfs left its state dir open to all; the mount closes it.
	if err := os.MkdirAll(filepath.Join(dataDir, ".walfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, dataDir, "file://"+replicaDir)
	syscall.Umask(0o022) // for python's files inside the mount: the user's, not walfs's
	py(t, `
import sqlite3, sys, os
mnt = sys.argv[1]
os.makedirs(os.path.join(mnt, "sub"), exist_ok=True)
for name, mode in (("wal.db", "wal"), ("sub/delete.db", "delete")):
    c = sqlite3.connect(os.path.join(mnt, name), isolation_level=None)
    c.execute("pragma journal_mode=" + mode)
    c.execute("create table t(id integer primary key, v text)")
    for i in range(50):
        c.execute("insert into t(v) values (?)", ("secret %d" % i,))
    c.close()
`, m.Mnt)
	m.Sync()

	stateDir := filepath.Join(dataDir, ".walfs")
	files := requirePrivateTree(t, stateDir)
	requirePrivateTree(t, replicaDir)
	if got, want := perm(t, filepath.Join(stateDir, "control.sock")), fs.FileMode(0o600); got != want {
		t.Errorf("control socket mode %v, want %v", got, want)
	}
	if files < 3 {
		t.Errorf("state dir holds %d files, want the lock, the socket and the spool or positions", files)
	}

	// Another user can do nothing with the mount.
	bin := nobodyBinary(t)
	for _, args := range [][]string{
		{"status", m.Mnt},
		{"sync", "--timeout", "5s", m.Mnt},
		{"unmount", "--timeout", "5s", m.Mnt},
		{"unmount", "--lazy", "--timeout", "5s", m.Mnt},
	} {
		out, err := runAsNobody(t, bin, args...)
		if err == nil {
			t.Errorf("walfs %s as nobody: exit 0, want a failure\n%s", strings.Join(args, " "), out)
		}
		t.Logf("walfs %s as nobody: %v: %s", strings.Join(args, " "), err, out)
		if want := "only the user running the mount, or root, may control it"; !strings.Contains(out, want) {
			t.Errorf("walfs %s as nobody: output lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
	}
	if !isMounted(m.Mnt) {
		t.Fatalf("mount gone after another user's commands\n%s", m.log)
	}
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("insert into t(v) values ('after the attempts')")
c.close()
`, filepath.Join(m.Mnt, "wal.db"))
	m.Sync()
	m.Unmount()

	// Restores create private files and directories, and keep the mode of
	// a file they replace.
	syscall.Umask(0)
	outDir := sharedDir(t)
	newFile, replaced := filepath.Join(outDir, "new.db"), filepath.Join(outDir, "replaced.db")
	if err := os.WriteFile(replaced, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"restore", "-o", newFile, "file://" + replicaDir + "/wal.db"},
		{"restore", "--force", "-o", replaced, "file://" + replicaDir + "/sub/delete.db"},
		{"restore", "--all", "--replica", "file://" + replicaDir, filepath.Join(outDir, "all")},
	} {
		if out, err := runWalfs(t, args...); err != nil {
			t.Fatalf("walfs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	requireSameDB(t, filepath.Join(dataDir, "wal.db"), newFile)
	requireSameDB(t, filepath.Join(dataDir, "sub", "delete.db"), replaced)
	for _, tc := range []struct {
		path string
		want fs.FileMode
	}{
		{"new.db", 0o600},
		{"replaced.db", 0o640},
		{"all", 0o700},
		{"all/wal.db", 0o600},
		{"all/sub", 0o700},
		{"all/sub/delete.db", 0o600},
	} {
		if got := perm(t, filepath.Join(outDir, filepath.FromSlash(tc.path))); got != tc.want {
			t.Errorf("restored %s: mode %v, want %v", tc.path, got, tc.want)
		}
	}
}

// sharedDir is an empty directory of root's that other users may traverse,
// so that what stops them is walfs's own modes, not the test's temp dirs
// (t.TempDir's are root's alone).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "walfs-private-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// requirePrivateTree fails unless every directory under root (root too) is
// 0700 and no file under it grants group or others anything. It returns
// how many non-directories it saw.
func requirePrivateTree(t *testing.T, root string) int {
	t.Helper()
	var files int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode().Perm()
		switch {
		case d.IsDir() && mode != 0o700:
			t.Errorf("%s: directory mode %v, want drwx------", p, mode)
		case !d.IsDir():
			files++
			if mode&0o077 != 0 {
				t.Errorf("%s: mode %v, want no access for group and others", p, mode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// perm returns the permission bits of path.
func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// runAsNobody runs bin (which nobody may execute) as user nobody.
func runAsNobody(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
