package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// walfsBin is the binary built once for the whole package; permopBin is the
// helper the permission tests run as other users (permop/main.go).
var walfsBin, permopBin string

func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv(posixCaseEnv); ok {
		// A child of TestPermPosix runs one posixtest case; it needs no
		// binaries.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "walfs-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Other users run these binaries too (perm_*_test.go); MkdirTemp made
	// the directory 0700.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	walfsBin = filepath.Join(dir, "walfs")
	permopBin = filepath.Join(dir, "permop")
	for _, b := range []struct{ out, pkg string }{{walfsBin, "../cmd/walfs"}, {permopBin, "./permop"}} {
		build := exec.Command("go", "build", "-o", b.out, b.pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", b.pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireEnv skips (or, in CI, fails) when the machine lacks what a test needs.
func requireEnv(t testing.TB) {
	t.Helper()
	need := func(ok bool, what string) {
		if ok {
			return
		}
		if os.Getenv("WALFS_TEST_DISALLOW_SKIP") == "1" {
			t.Fatalf("missing %s (WALFS_TEST_DISALLOW_SKIP=1 forbids skipping)", what)
		}
		t.Skipf("missing %s", what)
	}
	_, err := os.Stat("/dev/fuse")
	need(err == nil, "/dev/fuse")
	need(os.Geteuid() == 0, "root (for DirectMount)")
	_, err = exec.LookPath("python3")
	need(err == nil, "python3")
}

// mountProc is a running `walfs mount`.
type mountProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	Mnt     string
	DataDir string
	Replica string
	log     *syncBuffer
	done    chan error
}

// startMount runs walfs mount in the background and waits for the mount.
func startMount(t testing.TB, dataDir, replica string, extra ...string) *mountProc {
	t.Helper()
	return startMountEnv(t, nil, dataDir, replica, extra...)
}

// startMountEnv is startMount with extra environment variables.
func startMountEnv(t testing.TB, env []string, dataDir, replica string, extra ...string) *mountProc {
	t.Helper()
	return startMountAt(t, env, dataDir, replica, filepath.Join(t.TempDir(), "mnt"), extra...)
}

// startMountAt is startMountEnv at a given mount point.
func startMountAt(t testing.TB, env []string, dataDir, replica, mnt string, extra ...string) *mountProc {
	t.Helper()
	return startMountWrapped(t, nil, env, dataDir, replica, mnt, extra...)
}

// startMountWrapped is startMountAt with walfs run by the command wrap
// (e.g. unshare into another pid namespace); nil runs it directly.
func startMountWrapped(t testing.TB, wrap, env []string, dataDir, replica, mnt string, extra ...string) *mountProc {
	t.Helper()
	requireEnv(t)
	args := append([]string{"mount", "--data-dir", dataDir, "--replica", replica, "--log-level", "debug"}, extra...)
	args = append(args, mnt)
	args = append(append(wrap[:len(wrap):len(wrap)], walfsBin), args...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logBuf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logBuf, logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &mountProc{t: t, cmd: cmd, Mnt: mnt, DataDir: dataDir, Replica: replica, log: logBuf, done: make(chan error, 1)}
	go func() { m.done <- cmd.Wait() }()
	t.Cleanup(m.cleanup)
	deadline := time.Now().Add(60 * time.Second)
	for !mountedLogged(logBuf.String()) || !isMounted(mnt) {
		select {
		case err := <-m.done:
			m.done <- err
			t.Fatalf("walfs mount exited before mounting: %v\n%s", err, logBuf)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mount did not appear within 60s\n%s", logBuf)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return m
}

// mountedLogged reports whether a walfs mount log says the mount is ready:
// a primary's, or a follower's once every database is restored.
func mountedLogged(log string) bool {
	return strings.Contains(log, "mounted; open your databases") || strings.Contains(log, "mounted read-only; databases follow the replica")
}

// syncBuffer is a bytes.Buffer safe for the writer goroutines of exec.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func isMounted(mnt string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == mnt {
			return true
		}
	}
	return false
}

// Unmount runs `walfs unmount` and waits for the mount process to exit 0.
func (m *mountProc) Unmount() {
	m.t.Helper()
	out, err := runWalfs(m.t, "unmount", "--timeout", "30s", m.Mnt)
	if err != nil {
		m.t.Fatalf("walfs unmount: %v\n%s\nmount log:\n%s", err, out, m.log)
	}
	m.wait(0)
}

// Sync runs `walfs sync`.
func (m *mountProc) Sync() {
	m.t.Helper()
	if out, err := runWalfs(m.t, "sync", "--timeout", "30s", m.Mnt); err != nil {
		m.t.Fatalf("walfs sync: %v\n%s\nmount log:\n%s", err, out, m.log)
	}
}

// Kill sends SIGKILL to the mount process (a crash) and waits for it. A
// process still there 30s later is stuck in the kernel, typically exiting
// while it waits for an answer from its own FUSE mount: Kill then fails the
// test with its threads' kernel stacks, after aborting the mount's FUSE
// connection so that the process can end.
func (m *mountProc) Kill() {
	m.t.Helper()
	m.cmd.Process.Kill()
	select {
	case <-m.done:
		m.done <- nil
		return
	case <-time.After(30 * time.Second):
	}
	stacks := kernelStacks(m.cmd.Process.Pid)
	abort := abortFUSE(m.Mnt)
	select {
	case <-m.done:
		m.done <- nil
	case <-time.After(30 * time.Second):
		abort += "; the process is still there"
	}
	m.t.Fatalf("walfs mount (pid %d) did not exit within 30s of SIGKILL (%s); its threads:\n%s", m.cmd.Process.Pid, abort, stacks)
}

func (m *mountProc) wait(wantCode int) {
	m.t.Helper()
	select {
	case err := <-m.done:
		m.done <- err
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		if code != wantCode {
			m.t.Fatalf("walfs mount exited %d, want %d\n%s", code, wantCode, m.log)
		}
	case <-time.After(60 * time.Second):
		m.t.Fatalf("walfs mount did not exit\n%s", m.log)
	}
}

func (m *mountProc) cleanup() {
	select {
	case err := <-m.done:
		m.done <- err
	default:
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			m.cmd.Process.Kill()
			<-m.done
		}
	}
	if isMounted(m.Mnt) {
		syscall.Unmount(m.Mnt, syscall.MNT_DETACH)
	}
	if m.t.Failed() {
		m.t.Logf("walfs mount log:\n%s", m.log)
	}
}

// runWalfs runs the walfs binary and returns combined output.
func runWalfs(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return runWalfsEnv(t, nil, args...)
}

// runWalfsEnv runs the walfs binary with extra environment variables.
func runWalfsEnv(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, walfsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// py runs a python3 script with args; the script gets them as sys.argv[1:].
func py(t testing.TB, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return string(out)
}

// dumpScript prints a canonical dump of a database and its integrity check.
const dumpScript = `
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("pragma integrity_check").fetchone()[0])
for line in c.iterdump():
    print(line)
`

// dump returns the canonical content of the database at path.
func dump(t testing.TB, path string) string {
	t.Helper()
	out := py(t, dumpScript, path)
	if !strings.HasPrefix(out, "ok\n") {
		t.Fatalf("integrity_check of %s: %s", path, firstLine(out))
	}
	return out
}

// restoreTo runs walfs restore of url into a fresh file and returns its path.
func restoreTo(t testing.TB, url string, extra ...string) string {
	t.Helper()
	return restoreToEnv(t, nil, url, extra...)
}

// restoreToEnv is restoreTo with extra environment variables.
func restoreToEnv(t testing.TB, env []string, url string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	args := append([]string{"restore", "-o", out}, extra...)
	args = append(args, url)
	if o, err := runWalfsEnv(t, env, args...); err != nil {
		t.Fatalf("walfs restore %s: %v\n%s", url, err, o)
	}
	return out
}

// requireSameDB fails unless the two databases have identical content.
func requireSameDB(t testing.TB, live, restored string) {
	t.Helper()
	a, b := dump(t, live), dump(t, restored)
	if a != b {
		t.Fatalf("restored database differs from live one:\n%s", diffLines(a, b))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)) && len(out) < 10; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n  live:     %.200s\n  restored: %.200s", i+1, x, y))
		}
	}
	return fmt.Sprintf("live %d lines, restored %d lines\n%s", len(al), len(bl), strings.Join(out, "\n"))
}
