package fusefs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// agentEnv makes the test binary an agent that does file I/O on a mount for
// a test in this package: a process serving a FUSE mount should not do I/O
// on it itself.
const agentEnv = "WALFS_FUSEFS_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) == "1" {
		os.Exit(runAgent(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// runAgent answers one line per command: "open PATH" (read-write) -> "ok N"
// or "err ERRNO"; "pwrite N OFF HEXBYTES" -> "ok"; "close N" -> "ok".
func runAgent(in io.Reader, out io.Writer) int {
	var files []*os.File
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		reply := func(err error) {
			var errno syscall.Errno
			switch {
			case err == nil:
				fmt.Fprintln(out, "ok")
			case errors.As(err, &errno):
				fmt.Fprintln(out, "err", errno)
			default:
				fmt.Fprintln(out, "err", err)
			}
		}
		switch f[0] {
		case "open":
			file, err := os.OpenFile(f[1], os.O_RDWR, 0)
			if err != nil {
				reply(err)
				continue
			}
			files = append(files, file)
			fmt.Fprintln(out, "ok", len(files)-1)
		case "pwrite":
			n, _ := strconv.Atoi(f[1])
			off, _ := strconv.ParseInt(f[2], 10, 64)
			var b []byte
			fmt.Sscanf(f[3], "%x", &b)
			_, err := files[n].WriteAt(b, off)
			reply(err)
		case "close":
			n, _ := strconv.Atoi(f[1])
			reply(files[n].Close())
		}
	}
	return 0
}

// agent is a running runAgent child.
type agent struct {
	in    io.WriteCloser
	lines chan string
}

func startAgent(t *testing.T) *agent {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), agentEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agent{in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
	}()
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	return a
}

// send gives the agent a command without waiting for its answer.
func (a *agent) send(t *testing.T, format string, args ...any) {
	t.Helper()
	if _, err := fmt.Fprintf(a.in, format+"\n", args...); err != nil {
		t.Fatal(err)
	}
}

// do runs a command and returns the agent's answer.
func (a *agent) do(t *testing.T, format string, args ...any) string {
	t.Helper()
	a.send(t, format, args...)
	return <-a.lines
}

// mountRecorder mounts data at mnt with passthrough, reporting to a new
// recorder, and unmounts at the end of the test.
func mountRecorder(t *testing.T, data, mnt string) (*Mount, *recorder) {
	t.Helper()
	rec := &recorder{writes: map[string]int{}, direct: map[string]int{}}
	m, err := New(Options{DataDir: data, MountPoint: mnt, Capturer: rec, Passthrough: true})
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
	return m, rec
}

// recorder is a Capturer that records what the mount told it about
// database files.
type recorder struct {
	mu       sync.Mutex
	writes   map[string]int // BeforeWrite calls
	direct   map[string]int // passthrough handles opened
	suspects []string       // Suspect calls: path and why
}

func (r *recorder) BeforeWrite(path string, off int64, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes[path]++
	return nil
}

func (r *recorder) DBPassthrough(path string, open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if open {
		r.direct[path]++
	}
}

func (r *recorder) counts(path string) (writes, direct int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[path], r.direct[path]
}

func (r *recorder) WALOpen(string, *os.File) error              { return nil }
func (r *recorder) WALWrite(string, *os.File, int64, int) error { return nil }
func (r *recorder) WALTruncate(string, *os.File, int64) error   { return nil }
func (r *recorder) WALSync(string) error                        { return nil }
func (r *recorder) BeforeWALTruncate(string) error              { return nil }
func (r *recorder) JournalEnd(string) error                     { return nil }
func (r *recorder) JournalZeroed(string, []byte) error          { return nil }
func (r *recorder) Removed(string)                              {}
func (r *recorder) DBSync(string) error                         { return nil }
func (r *recorder) Suspect(path, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.suspects = append(r.suspects, path+": "+why)
}

func (r *recorder) suspected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.suspects)
}

// requireMount skips (or, in CI, fails) where this process cannot mount
// with passthrough.
func requireMount(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	if err == nil && os.Geteuid() == 0 {
		return
	}
	if os.Getenv("WALFS_TEST_DISALLOW_SKIP") == "1" {
		t.Fatal("needs root and /dev/fuse (WALFS_TEST_DISALLOW_SKIP=1 forbids skipping)")
	}
	t.Skip("needs root and /dev/fuse")
}

// A database file whose only handle was page-cached (it was not in WAL mode
// when opened) gets passthrough handles once that handle is released. The
// test holds the release where go-fuse has run walfs's Release but not yet
// finished the RELEASE, opens the database again there, and once more after:
// both opens must succeed and be passed through. (Before turns.go, go-fuse's
// end of the release unregistered the first passthrough handle's backing id
// and the kernel failed the second open with EIO; SQLite turns that into a
// read-only connection.)
func TestPassthroughAfterPageCachedRelease(t *testing.T) {
	requireMount(t)
	dir := t.TempDir()
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 4096)
	copy(hdr, "SQLite format 3\x00")
	hdr[16], hdr[17] = 0x10, 0x00 // 4096-byte pages
	hdr[18], hdr[19] = 1, 1       // rollback journal...
	hdr[39] = 1                   // ...with a free list: opened page-cached (kernelServes)
	if err := os.WriteFile(filepath.Join(data, "app.db"), hdr, 0o644); err != nil {
		t.Fatal(err)
	}

	inRelease, proceed := make(chan struct{}), make(chan struct{})
	letGo := sync.OnceFunc(func() { close(proceed) })
	var once sync.Once
	testHookReleased = func(rel string, passthrough bool) {
		if rel == "app.db" && !passthrough {
			once.Do(func() { close(inRelease); <-proceed })
		}
	}
	waits := make(chan struct{}, 1)
	testHookTurnWait = func() {
		select {
		case waits <- struct{}{}:
		default:
		}
	}
	released := make(chan struct{}, 1)
	testHookReleaseDone = func() {
		select {
		case released <- struct{}{}:
		default:
		}
	}
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	t.Cleanup(func() { // after the unmount below (cleanups run last first)
		testHookReleased, testHookTurnWait, testHookReleaseDone = nil, nil, nil
		syscall.Umask(umask)
	})
	_, rec := mountRecorder(t, data, mnt)

	a := startAgent(t)
	t.Cleanup(letGo) // before the agent is stopped: it may wait on the parked release
	db := filepath.Join(mnt, "app.db")
	if got := a.do(t, "open %s", db); got != "ok 0" {
		t.Fatalf("first open: %s", got)
	}
	if _, direct := rec.counts("app.db"); direct != 0 {
		t.Fatal("the first open was passed through: the test needs a page-cached handle (see kernelServes)")
	}
	// The connection puts the database in WAL mode, then closes.
	if got := a.do(t, "pwrite 0 18 0202"); got != "ok" {
		t.Fatalf("write through the page-cached handle: %s", got)
	}
	if got := a.do(t, "close 0"); got != "ok" {
		t.Fatalf("close: %s", got)
	}
	<-inRelease // the kernel sends RELEASE after close returns
	a.send(t, "open %s", db)
	second := ""
	select {
	case <-waits: // the open waits until the release is over
	case second = <-a.lines:
	}
	letGo()
	if second == "" {
		second = <-a.lines
	}
	if second != "ok 1" {
		t.Fatalf("open after the page-cached handle's release: %s", second)
	}
	<-released // go-fuse is done with the page-cached handle
	if got := a.do(t, "open %s", db); got != "ok 2" {
		t.Fatalf("second passthrough open: %s", got)
	}
	writes, _ := rec.counts("app.db")
	if got := a.do(t, "pwrite 2 4096 00"); got != "ok" {
		t.Fatalf("write through a passthrough handle: %s", got)
	}
	after, direct := rec.counts("app.db")
	if direct != 2 || after != writes {
		t.Fatalf("%d passthrough opens and %d writes seen by walfs, want 2 and 0: the kernel did not pass the handles through", direct, after-writes)
	}
	for _, n := range []int{1, 2} {
		if got := a.do(t, "close %d", n); got != "ok" {
			t.Fatalf("close %d: %s", n, got)
		}
	}
}
