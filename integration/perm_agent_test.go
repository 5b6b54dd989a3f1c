package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// permUser is a user the permission tests act as: a permop process runs
// with exactly these credentials.
type permUser struct {
	Name   string
	UID    int
	GID    int
	Groups []int // supplementary groups, sorted
}

const (
	uidA, gidA     = 4001, 4001
	uidB, gidB     = 4002, 4002
	gidShared      = 4100 // A's and B's supplementary group
	uidNobody      = 65534
	gidNobody      = 65534
	permOpDeadline = 30 * time.Second // a hung operation is a failure, not a hung test
)

var permUsers = []permUser{
	{Name: "root", UID: 0, GID: 0},
	{Name: "nobody", UID: uidNobody, GID: gidNobody},
	{Name: "A", UID: uidA, GID: gidA, Groups: []int{gidA, gidShared}},
	{Name: "B", UID: uidB, GID: gidB, Groups: []int{gidShared}},
}

func permUserNamed(t testing.TB, name string) permUser {
	t.Helper()
	for _, u := range permUsers {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no permission-test user %q", name)
	return permUser{}
}

// permRequest is permop's request (permop/main.go); paths are absolute.
type permRequest struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Path2 string `json:"path2,omitempty"`
	Flags int    `json:"flags,omitempty"`
	Mode  uint32 `json:"mode,omitempty"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Size  int64  `json:"size,omitempty"`
	Dev   int    `json:"dev,omitempty"`
	Data  string `json:"data,omitempty"`
	Umask int    `json:"umask"`
}

// permReply is permop's answer.
type permReply struct {
	Errno syscall.Errno `json:"errno"`
	Out   string        `json:"out,omitempty"`
}

// String is the errno's name (OK for success) and the output, if any.
func (r permReply) String() string {
	if r.Out == "" {
		return errnoName(r.Errno)
	}
	return fmt.Sprintf("%s out=%q", errnoName(r.Errno), r.Out)
}

// permAgent is a permop process running as one user. The kernel checks
// permissions (and FUSE's allow_other) against the real process, so acting
// as a user needs a process of that user.
type permAgent struct {
	user   permUser
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan []byte
	stderr *syncBuffer
	closed bool
}

// startPermAgent starts permop as u and checks that the kernel sees the
// credentials the test means.
func startPermAgent(t testing.TB, u permUser) *permAgent {
	t.Helper()
	groups := make([]uint32, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = uint32(g)
	}
	cmd := exec.Command(permopBin)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups}}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a := &permAgent{user: u, cmd: cmd, in: in, lines: make(chan []byte), stderr: &syncBuffer{}}
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start permop as %s: %v", u.Name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			a.lines <- slices.Clone(sc.Bytes())
		}
		close(a.lines)
	}()
	t.Cleanup(a.close)
	line, err := a.next()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		UID, EUID, GID, EGID int
		Groups               []int
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("permop as %s: hello %q: %v", u.Name, line, err)
	}
	if got.UID != u.UID || got.EUID != u.UID || got.GID != u.GID || got.EGID != u.GID || !slices.Equal(got.Groups, u.Groups) {
		t.Fatalf("permop as %s runs as uid %d/%d gid %d/%d groups %v, want uid %d gid %d groups %v",
			u.Name, got.UID, got.EUID, got.GID, got.EGID, got.Groups, u.UID, u.GID, u.Groups)
	}
	return a
}

// do runs one request and returns permop's reply.
func (a *permAgent) do(req permRequest) (permReply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return permReply{}, err
	}
	if _, err := a.in.Write(append(b, '\n')); err != nil {
		return permReply{}, fmt.Errorf("send %s to %s's permop: %w (stderr: %s)", req.Op, a.user.Name, err, a.stderr)
	}
	line, err := a.next()
	if err != nil {
		return permReply{}, fmt.Errorf("%s %s: %w", req.Op, req.Path, err)
	}
	var rep permReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return permReply{}, fmt.Errorf("%s's permop replied %q: %w", a.user.Name, line, err)
	}
	return rep, nil
}

func (a *permAgent) next() ([]byte, error) {
	timer := time.NewTimer(permOpDeadline)
	defer timer.Stop()
	select {
	case line, ok := <-a.lines:
		if !ok {
			return nil, fmt.Errorf("%s's permop exited (stderr: %s)", a.user.Name, a.stderr)
		}
		return line, nil
	case <-timer.C:
		a.cmd.Process.Kill()
		return nil, fmt.Errorf("%s's permop gave no answer within %v (killed)", a.user.Name, permOpDeadline)
	}
}

// close ends the process: closing stdin makes permop exit.
func (a *permAgent) close() {
	if a.closed {
		return
	}
	a.closed = true
	a.in.Close()
	timer := time.NewTimer(permOpDeadline)
	defer timer.Stop()
	for open := true; open; {
		select {
		case _, open = <-a.lines:
		case <-timer.C:
			a.cmd.Process.Kill()
			timer.Reset(permOpDeadline)
		}
	}
	a.cmd.Wait()
}

// errnoName names an errno the way man pages do; OK is success.
func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "OK"
	}
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("errno%d(%v)", int(e), e)
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EIO: "EIO", syscall.ENXIO: "ENXIO",
	syscall.EBADF: "EBADF", syscall.EAGAIN: "EAGAIN", syscall.EACCES: "EACCES", syscall.EBUSY: "EBUSY",
	syscall.EEXIST: "EEXIST", syscall.EXDEV: "EXDEV", syscall.ENODEV: "ENODEV", syscall.ENOTDIR: "ENOTDIR",
	syscall.EISDIR: "EISDIR", syscall.EINVAL: "EINVAL", syscall.ETXTBSY: "ETXTBSY", syscall.EFBIG: "EFBIG",
	syscall.ENOSPC: "ENOSPC", syscall.EROFS: "EROFS", syscall.EMLINK: "EMLINK", syscall.ENAMETOOLONG: "ENAMETOOLONG",
	syscall.ENOSYS: "ENOSYS", syscall.ENOTEMPTY: "ENOTEMPTY", syscall.ELOOP: "ELOOP", syscall.EOPNOTSUPP: "EOPNOTSUPP",
	syscall.ENOTCONN: "ENOTCONN", syscall.ESTALE: "ESTALE", syscall.EOVERFLOW: "EOVERFLOW",
}

// openUp makes dir and every directory above it, up to the temp dir,
// 0755: t.TempDir and os.MkdirTemp make 0700 directories, in which other
// users would fail on the path instead of on the operation under test.
func openUp(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	if !strings.HasPrefix(dir, tmp+"/") {
		t.Fatalf("openUp: %s is not inside %s", dir, tmp)
	}
	for p := dir; p != tmp; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
