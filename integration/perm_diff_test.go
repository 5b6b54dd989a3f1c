package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// permKnownDifferences are steps of buildPermScript whose outcome in the
// mount differs from the disk's for a reason we accept, keyed by
// permStep.String(), each with that reason (the README lists them). A
// listed step that no longer differs fails the test, so the list stays
// true.
var permKnownDifferences = map[string]string{
	`nobody write setid/nobody-2767 O_WRONLY|O_APPEND data="more"`: "a write by a user outside the file's group clears a setgid bit " +
		"that has no group execute on ext4 (Linux 6.x), but FUSE's kernel side, which clears set-id bits on write " +
		"for the server, clears setgid only together with group execute",
}

// A mount shared with other users behaves like the disk under it: the same
// script of operations, each run by a real process of its user, gives the
// same errno and leaves the same attributes (type, mode with set-id and
// sticky bits, owner, group, size, links, symlink target, whether mtime and
// ctime moved) on a plain directory of the same disk as in a walfs mount
// run with --allow-other, with either capture path (they serve writes
// differently). The disk is the expectation; nothing is hard-coded.
func TestPermDifferential(t *testing.T) {
	requireEnv(t)
	base := t.TempDir()
	openUp(t, base)
	disk := filepath.Join(base, "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	script := buildPermScript()
	onDisk := runPermScript(t, disk, script)
	checkDiskExercised(t, script, onDisk)
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) {
			dir := filepath.Join(base, capture)
			data := filepath.Join(dir, "data")
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			openUp(t, data)
			m := startMountAt(t, nil, data, "file://"+filepath.Join(dir, "replica"), filepath.Join(dir, "mnt"), "--allow-other", "--capture", capture)
			requireSameFS(t, disk, data)
			comparePermRuns(t, script, onDisk, runPermScript(t, m.Mnt, script))
			m.Unmount()
		})
	}
}

// comparePermRuns fails listing every step whose outcome in the mount
// differs from the disk's, unless permKnownDifferences explains it, and
// every listed difference that did not occur.
func comparePermRuns(t *testing.T, script permScript, onDisk, inMount []permOutcome) {
	t.Helper()
	keys := permStepKeys(script)
	var diffs []string
	equal, known := 0, 0
	stillDiffer := map[string]bool{}
	for i, st := range script {
		d, mt := onDisk[i].String(), inMount[i].String()
		if d == mt {
			equal++
			continue
		}
		if _, ok := permKnownDifferences[keys[i]]; ok {
			known++
			stillDiffer[keys[i]] = true
			continue
		}
		diffs = append(diffs, fmt.Sprintf("step %d [%s]\n    disk:  %s\n    mount: %s", i, st, d, mt))
	}
	for key, why := range permKnownDifferences {
		if !stillDiffer[key] {
			t.Errorf("permKnownDifferences lists %q (%s), but it no longer differs (or is no step): remove it", key, why)
		}
	}
	t.Logf("steps tried: %d, equal: %d, known differences: %d, unexpected differences: %d", len(script), equal, known, len(diffs))
	if len(diffs) > 0 {
		t.Errorf("%d of %d steps differ between the disk and the mount:\n%s", len(diffs), len(script), strings.Join(diffs, "\n"))
	}
}

// requireSameFS fails unless a and b are on the same file system, so that
// the disk run is the right expectation for the mount's backing directory.
func requireSameFS(t testing.TB, a, b string) {
	t.Helper()
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(b, &sb); err != nil {
		t.Fatal(err)
	}
	if sa.Dev != sb.Dev {
		t.Fatalf("%s and %s are on different file systems", a, b)
	}
}

// permStepKeys names each step by its String, numbering repeats, for
// permKnownDifferences.
func permStepKeys(script permScript) []string {
	seen := map[string]int{}
	keys := make([]string, len(script))
	for i, st := range script {
		k := st.String()
		seen[k]++
		if n := seen[k]; n > 1 {
			k = fmt.Sprintf("%s #%d", k, n)
		}
		keys[i] = k
	}
	return keys
}

// permOutcome is what one step did: its result and the attributes of the
// paths it touched, as root sees them afterwards.
type permOutcome struct {
	Result string
	Stats  []string
}

func (o permOutcome) String() string {
	return o.Result + " | " + strings.Join(o.Stats, " | ")
}

// runPermScript runs the script in the tree at root, each step in a
// process of its user, and returns every step's outcome.
func runPermScript(t *testing.T, root string, script permScript) []permOutcome {
	t.Helper()
	agents := map[string]*permAgent{}
	defer func() {
		for _, a := range agents {
			a.close()
		}
	}()
	out := make([]permOutcome, len(script))
	for i, st := range script {
		paths := st.touched()
		before := make([]permStat, len(paths))
		for j, p := range paths {
			before[j] = lstatPerm(filepath.Join(root, p))
		}
		// A change within the clock tick of the last one would leave the
		// timestamps as they were.
		waitClockPast(t, before)
		a := agents[st.User]
		if a == nil {
			a = startPermAgent(t, permUserNamed(t, st.User))
			agents[st.User] = a
		}
		rep, err := a.do(st.request(root))
		if err != nil {
			t.Fatalf("step %d [%s] in %s: %v", i, st, root, err)
		}
		o := permOutcome{Result: rep.String()}
		for j, p := range paths {
			o.Stats = append(o.Stats, p+": "+lstatPerm(filepath.Join(root, p)).describe(before[j]))
		}
		out[i] = o
	}
	return out
}

// checkDiskExercised guards against a script that proves nothing: on the
// disk every user must succeed at some steps, and every user but root must
// be refused some.
func checkDiskExercised(t *testing.T, script permScript, onDisk []permOutcome) {
	t.Helper()
	ok, refused := map[string]int{}, map[string]int{}
	for i, st := range script {
		switch {
		case strings.HasPrefix(onDisk[i].Result, "OK"):
			ok[st.User]++
		case strings.HasPrefix(onDisk[i].Result, "EACCES"), strings.HasPrefix(onDisk[i].Result, "EPERM"):
			refused[st.User]++
		}
	}
	for _, u := range permUsers {
		t.Logf("on disk, %s: %d steps succeeded, %d refused (EACCES/EPERM)", u.Name, ok[u.Name], refused[u.Name])
		if ok[u.Name] == 0 || (u.UID != 0 && refused[u.Name] == 0) {
			t.Errorf("on disk, %s succeeded %d times and was refused %d times: the script does not exercise permissions", u.Name, ok[u.Name], refused[u.Name])
		}
	}
}

// permStat is a path's attributes, or the errno of lstat.
type permStat struct {
	errno  syscall.Errno
	st     syscall.Stat_t
	target string
}

func lstatPerm(p string) permStat {
	var s permStat
	if err := syscall.Lstat(p, &s.st); err != nil {
		s.errno = err.(syscall.Errno)
		return s
	}
	if s.st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		s.target, _ = os.Readlink(p)
	}
	return s
}

// describe normalizes the attributes: no inode numbers, no absolute times,
// only whether mtime and ctime moved since before.
func (s permStat) describe(before permStat) string {
	if s.errno != 0 {
		return errnoName(s.errno)
	}
	st := &s.st
	kind := map[uint32]string{syscall.S_IFREG: "file", syscall.S_IFDIR: "dir", syscall.S_IFLNK: "symlink",
		syscall.S_IFIFO: "fifo", syscall.S_IFCHR: "chardev", syscall.S_IFBLK: "blockdev", syscall.S_IFSOCK: "socket"}[st.Mode&syscall.S_IFMT]
	out := fmt.Sprintf("%s %04o %d:%d size=%d nlink=%d", kind, st.Mode&0o7777, st.Uid, st.Gid, st.Size, st.Nlink)
	if st.Mode&syscall.S_IFMT == syscall.S_IFCHR || st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
		out += fmt.Sprintf(" rdev=%d:%d", st.Rdev>>8, st.Rdev&0xff)
	}
	if s.target != "" {
		out += " -> " + s.target
	}
	if before.errno != 0 {
		return out + " (new)"
	}
	moved := func(a, b syscall.Timespec) string {
		if a == b {
			return "same"
		}
		return "changed"
	}
	return out + fmt.Sprintf(" mtime=%s ctime=%s", moved(st.Mtim, before.st.Mtim), moved(st.Ctim, before.st.Ctim))
}

// waitClockPast waits until the kernel's coarse clock, which stamps
// changes, is past every timestamp in sts, so that any change the next step
// makes moves them. It observes the clock; it never sleeps.
func waitClockPast(t testing.TB, sts []permStat) {
	t.Helper()
	var newest int64
	for _, s := range sts {
		if s.errno == 0 {
			newest = max(newest, s.st.Mtim.Nano(), s.st.Ctim.Nano())
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for coarseNow() <= newest {
		if time.Now().After(deadline) {
			t.Fatalf("coarse clock did not pass %v (a timestamp in the future?)", time.Unix(0, newest))
		}
	}
}

// coarseNow reads CLOCK_REALTIME_COARSE, the clock file timestamps come
// from.
func coarseNow() int64 {
	const clockRealtimeCoarse = 5
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockRealtimeCoarse, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return ts.Nano()
}
