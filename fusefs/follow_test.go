package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the unprivileged user the follower tests read as.
const nobody = 65534

// python3 is a Python with sqlite3 that every user may run.
const python3 = "/usr/bin/python3"

// mountFollower mounts a follower's view of a fresh data dir that every user
// may enter, and returns both paths. The data dir holds the state dir.
func mountFollower(t *testing.T, header HeaderPatcher) (data, mnt string) {
	t.Helper()
	requireMount(t)
	dir := t.TempDir()
	// t.TempDir's parents are 0700: let nobody reach the mount point.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, mnt = filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(data, StateDirName, "state"), "walfs's own", 0o644)
	m, err := NewFollower(FollowOptions{DataDir: data, MountPoint: mnt, Header: header, AllowOther: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(false); err != nil {
			t.Error(err)
			m.Unmount(true)
		}
		m.Wait()
	})
	return data, mnt
}

// writeFile writes content to path (making its directory), with mode perm
// exactly.
func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// runAs runs a command as uid (0 or nobody) and returns its combined output.
func runAs(t *testing.T, uid uint32, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", name, uid, err, out)
	}
	return string(out)
}

// changesScript tries every kind of change in the view at argv[1] and
// prints one line per try: its name and "ok" or the errno's name.
const changesScript = `
import errno, os, sys
m = sys.argv[1]
p = lambda n: os.path.join(m, n)
def openclose(path, flags, mode=0o644):
    os.close(os.open(path, flags, mode))
def read(path):
    with open(path, "rb") as f:
        f.read()
tries = [
    ("open O_WRONLY", lambda: openclose(p("shared"), os.O_WRONLY)),
    ("open O_RDWR", lambda: openclose(p("shared"), os.O_RDWR)),
    ("open O_RDWR|O_APPEND", lambda: openclose(p("shared"), os.O_RDWR | os.O_APPEND)),
    ("open O_TRUNC", lambda: openclose(p("shared"), os.O_RDONLY | os.O_TRUNC)),
    ("open O_CREAT new", lambda: openclose(p("new"), os.O_WRONLY | os.O_CREAT)),
    ("open O_CREAT|O_EXCL new", lambda: openclose(p("dir/new"), os.O_RDWR | os.O_CREAT | os.O_EXCL)),
    ("open O_TMPFILE", lambda: openclose(p("dir"), os.O_RDWR | os.O_TMPFILE)),
    ("mkdir", lambda: os.mkdir(p("newdir"))),
    ("mkfifo", lambda: os.mkfifo(p("fifo"))),
    ("symlink", lambda: os.symlink("shared", p("link"))),
    ("link", lambda: os.link(p("mine"), p("hardlink"))),
    ("unlink", lambda: os.unlink(p("shared"))),
    ("unlink state dir file", lambda: os.unlink(p(".walfs/state"))),
    ("rmdir", lambda: os.rmdir(p("dir"))),
    ("rename", lambda: os.rename(p("shared"), p("renamed"))),
    ("rename over", lambda: os.rename(p("mine"), p("shared"))),
    ("chmod", lambda: os.chmod(p("mine"), 0o600)),
    ("chown", lambda: os.chown(p("mine"), os.getuid(), -1)),
    ("truncate", lambda: os.truncate(p("shared"), 0)),
    ("utime", lambda: os.utime(p("mine"), (1, 1))),
    ("utime now", lambda: os.utime(p("mine"))),
    ("setxattr", lambda: os.setxattr(p("mine"), "user.k", b"v")),
    ("removexattr", lambda: os.removexattr(p("shared"), "user.k")),
    ("read shared", lambda: read(p("shared"))),
    ("read secret", lambda: read(p("secret"))),
]
for name, fn in tries:
    try:
        fn()
        print(name + ": ok")
    except OSError as e:
        print(name + ": " + errno.errorcode.get(e.errno, str(e.errno)))
`

// Every change made through the view fails with EROFS, for root and for an
// ordinary user alike, while the permissions of the disk still decide who
// may read what. Neither changes the data dir.
func TestFollowRefusesChanges(t *testing.T) {
	data, mnt := mountFollower(t, nil)
	writeFile(t, filepath.Join(data, "shared"), "shared", 0o666)
	writeFile(t, filepath.Join(data, "mine"), "nobody's", 0o644)
	if err := os.Chown(filepath.Join(data, "mine"), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(data, "secret"), "root's", 0o600)
	if err := os.Mkdir(filepath.Join(data, "dir"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "dir"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(data, "shared"), "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, data)

	for _, uid := range []uint32{0, nobody} {
		out := runAs(t, uid, python3, "-c", changesScript, mnt)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			name, got, _ := strings.Cut(line, ": ")
			want := "EROFS"
			switch {
			case name == "read shared":
				want = "ok"
			case name == "read secret" && uid == 0:
				want = "ok"
			case name == "read secret":
				want = "EACCES"
			case name == "unlink state dir file":
				want = "ENOENT" // hidden: there is nothing to unlink
			}
			if got != want {
				t.Errorf("uid %d: %s: got %s, want %s", uid, name, got, want)
			}
		}
		if n := strings.Count(out, "\n"); n != 25 {
			t.Errorf("uid %d: %d tries reported, want 25:\n%s", uid, n, out)
		}
	}
	if after := listTree(t, data); !slices.Equal(before, after) {
		t.Errorf("the data dir changed:\nbefore %v\nafter  %v", before, after)
	}
	v := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(mnt, "shared"), "user.k", v); err != nil || string(v[:n]) != "v" {
		t.Errorf("getxattr through the view: %q, %v", v[:max(n, 0)], err)
	}
	if n, err := unix.Listxattr(filepath.Join(mnt, "shared"), v); err != nil || string(v[:n]) != "user.k\x00" {
		t.Errorf("listxattr through the view: %q, %v", v[:max(n, 0)], err)
	}
}

// listTree lists every path under dir with its mode, owner, size and
// modification time, to see that nothing changed.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		out = append(out, fmt.Sprintf("%s %v %d:%d %d %v", p, fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sqliteScript opens the database argv[1] as an application would (read-write
// asked for), reads it and tries to write it.
const sqliteScript = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0)
print(c.execute("select count(*), sum(n) from t").fetchone())
try:
    c.execute("insert into t values (100)")
    c.commit()
    print("write: ok")
except sqlite3.Error as e:
    print("write:", e)
m = sqlite3.connect(sys.argv[1], timeout=0)
m.execute("pragma mmap_size=1000000")  # the view refuses shared maps: SQLite reads instead
print(m.execute("select count(*) from t").fetchone()[0])
`

// makeDB creates a SQLite database in rollback-journal mode at path.
func makeDB(t *testing.T, path string) {
	t.Helper()
	runAs(t, 0, python3, "-c", `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("create table t(n)")
c.executemany("insert into t values (?)", [(i,) for i in range(10)])
c.commit()
`, path)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// SQLite reads a database in the view and reports its writes as those to a
// read-only database: the read-write open failed with EROFS and it fell back
// to reading.
func TestFollowSQLite(t *testing.T) {
	data, mnt := mountFollower(t, nil)
	makeDB(t, filepath.Join(data, "app.db"))
	for _, uid := range []uint32{0, nobody} {
		out := runAs(t, uid, python3, "-c", sqliteScript, filepath.Join(mnt, "app.db"))
		want := "(10, 45)\nwrite: attempt to write a readonly database\n10\n"
		if out != want {
			t.Errorf("uid %d: got\n%s\nwant\n%s", uid, out, want)
		}
	}
}

// walfs's own threads may open a database for writing, to take SQLite's
// locks through the view: a write lock on the SHARED range keeps readers
// out until it is released. The handle still refuses every change.
func TestFollowOwnWriteLock(t *testing.T) {
	data, mnt := mountFollower(t, nil)
	makeDB(t, filepath.Join(data, "app.db"))
	writeFile(t, filepath.Join(data, "other"), "other", 0o644)
	db := filepath.Join(mnt, "app.db")

	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("own open for writing: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), 100); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write through the own handle: %v, want EROFS", err)
	}
	if err := f.Truncate(0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("ftruncate of the own handle: %v, want EROFS", err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 1<<20); !errors.Is(err, syscall.EROFS) {
		t.Errorf("fallocate through the own handle: %v, want EROFS", err)
	}
	if err := unix.Fchmod(int(f.Fd()), 0o600); !errors.Is(err, syscall.EROFS) {
		t.Errorf("fchmod of the own handle: %v, want EROFS", err)
	}
	src, err := os.Open(filepath.Join(mnt, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := unix.CopyFileRange(int(src.Fd()), nil, int(f.Fd()), nil, 5, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("copy_file_range into the view: %v, want EROFS", err)
	}

	const sharedFirst, sharedSize = 0x40000002, 510
	lock := func(typ int16) error {
		lk := unix.Flock_t{Type: typ, Whence: 0, Start: sharedFirst, Len: sharedSize}
		return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	}
	if err := lock(unix.F_WRLCK); err != nil {
		t.Fatalf("own write lock: %v", err)
	}
	read := `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0)
try:
    print(c.execute("select count(*) from t").fetchone()[0])
except sqlite3.Error as e:
    print(e)
`
	if got := runAs(t, nobody, python3, "-c", read, db); got != "database is locked\n" {
		t.Errorf("read under the write lock: %q, want SQLITE_BUSY", got)
	}
	if err := lock(unix.F_UNLCK); err != nil {
		t.Fatal(err)
	}
	if got := runAs(t, nobody, python3, "-c", read, db); got != "10\n" {
		t.Errorf("read after the lock's release: %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(data, "app.db")); err != nil || len(b) == 0 || b[100] == 'x' {
		t.Errorf("the database changed on the disk (%v)", err)
	}
}

// What the follower core does in the data dir shows at once: a file grown,
// shrunk or replaced (sizes too, also through an open handle), a file that
// appears after a lookup found nothing, a file removed. The state dir stays
// hidden.
func TestFollowSeesDataDir(t *testing.T) {
	data, mnt := mountFollower(t, nil)
	a, va := filepath.Join(data, "a"), filepath.Join(mnt, "a")
	writeFile(t, a, strings.Repeat("1", 100), 0o644)
	check := func(what string, want string) {
		t.Helper()
		fi, err := os.Stat(va)
		if err != nil || fi.Size() != int64(len(want)) {
			t.Fatalf("%s: stat %v, %v; want size %d", what, fi, err, len(want))
		}
		b, err := os.ReadFile(va)
		if err != nil || string(b) != want {
			t.Fatalf("%s: read %d bytes, %v; want %d", what, len(b), err, len(want))
		}
	}
	check("first read", strings.Repeat("1", 100))

	h, err := os.Open(va)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	grown := strings.Repeat("2", 5000)
	writeFile(t, a, grown, 0o644) // in place: same inode
	check("grown in place", grown)
	if fi, err := h.Stat(); err != nil || fi.Size() != 5000 {
		t.Fatalf("fstat of a handle opened before the growth: %v, %v", fi, err)
	}
	b := make([]byte, 10)
	if n, err := h.ReadAt(b, 4990); n != 10 || err != nil || string(b) != strings.Repeat("2", 10) {
		t.Fatalf("read past the old end through the old handle: %q, %v", b[:n], err)
	}
	// Pages changed in place, with size and mtime as they were: nothing
	// tells a page cache, so there must be none.
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(a, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte(strings.Repeat("3", 10)), 4990); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if n, err := h.ReadAt(b, 4990); n != 10 || err != nil || string(b) != strings.Repeat("3", 10) {
		t.Fatalf("read of bytes changed in place: %q, %v", b[:n], err)
	}
	if err := os.Truncate(a, 7); err != nil {
		t.Fatal(err)
	}
	check("shrunk", strings.Repeat("2", 7))

	writeFile(t, a+".tmp", "replaced", 0o644)
	if err := os.Rename(a+".tmp", a); err != nil {
		t.Fatal(err)
	}
	check("replaced", "replaced")

	c, vc := filepath.Join(data, "sub", "c.db"), filepath.Join(mnt, "sub", "c.db")
	if _, err := os.Stat(vc); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of a file not there yet: %v", err)
	}
	writeFile(t, c, "new", 0o644)
	if b, err := os.ReadFile(vc); err != nil || string(b) != "new" {
		t.Fatalf("file that appeared: %q, %v", b, err)
	}
	if err := os.Remove(c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vc); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of a removed file: %v", err)
	}
	names := func(dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(filepath.Join(mnt, "sub")); len(got) != 0 {
		t.Errorf("removed file still listed: %v", got)
	}
	if err := os.Symlink("a", filepath.Join(data, "l")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(mnt, "l")); err != nil || got != "a" {
		t.Errorf("readlink through the view: %q, %v", got, err)
	}
	var vs, ds syscall.Statfs_t
	if err := syscall.Statfs(mnt, &vs); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Statfs(data, &ds); err != nil {
		t.Fatal(err)
	}
	if vs.Blocks != ds.Blocks || vs.Bsize != ds.Bsize {
		t.Errorf("statfs of the view: %d blocks of %d, the disk's: %d of %d", vs.Blocks, vs.Bsize, ds.Blocks, ds.Bsize)
	}
	if got, want := names(mnt), []string{"a", "l", "sub"}; !slices.Equal(got, want) {
		t.Errorf("root lists %v, want %v (state dir hidden)", got, want)
	}
	for _, p := range []string{StateDirName, StateDirName + "/state"} {
		if _, err := os.Stat(filepath.Join(mnt, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %s: %v, want not found", p, err)
		}
	}
}

// headerRecorder patches bytes 18 and 19 of every file to 1 (rollback
// journal) and records which files and offsets it was asked about.
type headerRecorder struct {
	mu   sync.Mutex
	seen map[string][]int64
}

func (r *headerRecorder) PatchHeader(rel string, off int64, p []byte) {
	r.mu.Lock()
	r.seen[rel] = append(r.seen[rel], off)
	r.mu.Unlock()
	for i := int64(18); i <= 19; i++ {
		if i >= off && i < off+int64(len(p)) {
			p[i-off] = 1
		}
	}
}

// Every read is patched, with the file named relative to the data dir and
// the offset of the bytes given; the disk keeps its bytes.
func TestFollowPatchesHeader(t *testing.T) {
	rec := &headerRecorder{seen: map[string][]int64{}}
	data, mnt := mountFollower(t, rec)
	hdr := bytes.Repeat([]byte{2}, 8192)
	writeFile(t, filepath.Join(data, "sub", "app.db"), string(hdr), 0o644)

	f, err := os.Open(filepath.Join(mnt, "sub", "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4096)
	for _, off := range []int64{0, 4096} {
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte{2}, 4096)
		if off == 0 {
			want[18], want[19] = 1, 1
		}
		if !bytes.Equal(b, want) {
			t.Errorf("read at %d: bytes 16..20 are %v, want %v", off, b[16:20], want[16:20])
		}
	}
	if n, err := f.ReadAt(b[:4], 17); err != nil || n != 4 || !bytes.Equal(b[:4], []byte{2, 1, 1, 2}) {
		t.Errorf("unaligned read at 17: %v, %v", b[:4], err)
	}
	// A shared map would be read from the page cache, around the patcher
	// and stale once the core changes the file: the kernel refuses it for
	// direct-I/O files. A private copy is filled by (patched) reads.
	maps := `
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
    print("shared: ok")
except OSError as e:
    print("shared:", errno.errorcode[e.errno])
m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
print("private:", m[18], m[19])
`
	if got, want := runAs(t, 0, python3, "-c", maps, filepath.Join(mnt, "sub", "app.db")), "shared: ENODEV\nprivate: 1 1\n"; got != want {
		t.Errorf("maps of a file in the view: got %q, want %q", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.seen["sub/app.db"]; !slices.Contains(got, 0) || !slices.Contains(got, 4096) || !slices.Contains(got, 17) {
		t.Errorf("patcher saw %v, want offsets 0, 4096 and 17 of sub/app.db", rec.seen)
	}
	disk, err := os.ReadFile(filepath.Join(data, "sub", "app.db"))
	if err != nil || disk[18] != 2 {
		t.Errorf("the disk's header changed (%v)", err)
	}
}
