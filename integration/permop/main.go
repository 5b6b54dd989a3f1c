// Command permop runs file-system operations for the permission tests of
// package integration under the credentials it was started with (uid, gid,
// supplementary groups): the kernel checks permissions against the real
// process, so every user of a test is a separate permop process.
//
// It first prints one JSON line naming its identity, then answers each JSON
// request line on stdin with one JSON reply line on stdout. It exits when
// stdin closes.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"unsafe"
)

// request is one operation. Paths are absolute. The JSON form is the
// contract with package integration (permRequest there).
type request struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Path2 string `json:"path2,omitempty"` // rename/link: the new path; symlink: the target
	Flags int    `json:"flags,omitempty"` // open flags, renameat2 flags
	Mode  uint32 `json:"mode,omitempty"`  // create/mkdir/mknod/chmod mode, access(2) mask
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Size  int64  `json:"size,omitempty"`
	Dev   int    `json:"dev,omitempty"`
	Data  string `json:"data,omitempty"`
	Umask int    `json:"umask"`
}

// reply is the outcome: Errno 0 for success, Out the result of ops that
// return something (read, readdir, stat, readlink).
type reply struct {
	Errno int    `json:"errno"`
	Out   string `json:"out,omitempty"`
}

// hello is the first line: who the kernel thinks this process is.
type hello struct {
	UID    int   `json:"uid"`
	EUID   int   `json:"euid"`
	GID    int   `json:"gid"`
	EGID   int   `json:"egid"`
	Groups []int `json:"groups"`
	Umask  int   `json:"umask"`
}

func main() {
	groups, err := syscall.Getgroups()
	if err != nil {
		fmt.Fprintln(os.Stderr, "permop: getgroups:", err)
		os.Exit(2)
	}
	sort.Ints(groups)
	umask := syscall.Umask(0o022)
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(hello{UID: os.Getuid(), EUID: os.Geteuid(), GID: os.Getgid(), EGID: os.Getegid(), Groups: groups, Umask: umask}); err != nil {
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "permop: bad request:", err)
			os.Exit(2)
		}
		syscall.Umask(req.Umask)
		res, err := run(req)
		var errno syscall.Errno
		switch {
		case err == nil:
		case errors.As(err, &errno):
			res.Errno = int(errno)
		default:
			fmt.Fprintf(os.Stderr, "permop: %s: %v\n", req.Op, err)
			os.Exit(2)
		}
		if err := out.Encode(res); err != nil {
			os.Exit(2)
		}
	}
}

// utimeNow is UTIME_NOW: utimensat sets the time to now, which only needs
// write permission, where explicit times need ownership.
const utimeNow = 1<<30 - 1

func run(r request) (reply, error) {
	switch r.Op {
	case "open":
		fd, err := syscall.Open(r.Path, r.Flags|syscall.O_CLOEXEC, r.Mode)
		if err != nil {
			return reply{}, err
		}
		return reply{}, syscall.Close(fd)
	case "write":
		return reply{}, withFD(r.Path, r.Flags, r.Mode, func(fd int) error {
			_, err := syscall.Write(fd, []byte(r.Data))
			return err
		})
	case "read":
		var out string
		err := withFD(r.Path, syscall.O_RDONLY, 0, func(fd int) error {
			buf := make([]byte, 64<<10)
			n, err := syscall.Read(fd, buf)
			if n > 0 {
				out = string(buf[:n])
			}
			return err
		})
		return reply{Out: out}, err
	case "ftruncate":
		return reply{}, withFD(r.Path, r.Flags, 0, func(fd int) error { return syscall.Ftruncate(fd, r.Size) })
	case "truncate":
		return reply{}, syscall.Truncate(r.Path, r.Size)
	case "mkdir":
		return reply{}, syscall.Mkdir(r.Path, r.Mode)
	case "mknod":
		return reply{}, syscall.Mknod(r.Path, r.Mode, r.Dev)
	case "mkfifo":
		return reply{}, syscall.Mkfifo(r.Path, r.Mode)
	case "symlink":
		return reply{}, syscall.Symlink(r.Path2, r.Path)
	case "link":
		return reply{}, syscall.Link(r.Path, r.Path2)
	case "unlink":
		return reply{}, syscall.Unlink(r.Path)
	case "rmdir":
		return reply{}, syscall.Rmdir(r.Path)
	case "rename":
		if r.Flags == 0 {
			return reply{}, syscall.Rename(r.Path, r.Path2)
		}
		return reply{}, renameat2(r.Path, r.Path2, r.Flags)
	case "chmod":
		return reply{}, syscall.Chmod(r.Path, r.Mode)
	case "chown":
		return reply{}, syscall.Chown(r.Path, r.UID, r.GID)
	case "lchown":
		return reply{}, syscall.Lchown(r.Path, r.UID, r.GID)
	case "utimes-now":
		ts := []syscall.Timespec{{Nsec: utimeNow}, {Nsec: utimeNow}}
		return reply{}, syscall.UtimesNano(r.Path, ts)
	case "utimes-explicit":
		ts := []syscall.Timespec{{Sec: 1e9, Nsec: 5}, {Sec: 1e9 + 7, Nsec: 9}}
		return reply{}, syscall.UtimesNano(r.Path, ts)
	case "access":
		return reply{}, syscall.Access(r.Path, r.Mode)
	case "readdir":
		f, err := os.Open(r.Path)
		if err != nil {
			return reply{}, unwrap(err)
		}
		defer f.Close()
		names, err := f.Readdirnames(-1)
		sort.Strings(names)
		return reply{Out: strings.Join(names, ",")}, unwrap(err)
	case "stat":
		var st syscall.Stat_t
		if err := syscall.Stat(r.Path, &st); err != nil {
			return reply{}, err
		}
		return reply{Out: fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d", st.Mode, st.Uid, st.Gid, st.Size, st.Nlink)}, nil
	case "readlink":
		target, err := os.Readlink(r.Path)
		return reply{Out: target}, unwrap(err)
	}
	return reply{}, fmt.Errorf("unknown op %q", r.Op)
}

// withFD opens path, runs f on the descriptor and closes it; the first error
// wins.
func withFD(path string, flags int, mode uint32, f func(fd int) error) error {
	fd, err := syscall.Open(path, flags|syscall.O_CLOEXEC, mode)
	if err != nil {
		return err
	}
	ferr := f(fd)
	if err := syscall.Close(fd); ferr == nil && !errors.Is(err, syscall.EBADF) {
		ferr = err
	}
	return ferr
}

// unwrap returns the errno inside an os error, so the reply carries it.
func unwrap(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

func renameat2(from, to string, flags int) error {
	if sysRenameat2 < 0 {
		return syscall.ENOSYS
	}
	p1, err := syscall.BytePtrFromString(from)
	if err != nil {
		return err
	}
	p2, err := syscall.BytePtrFromString(to)
	if err != nil {
		return err
	}
	atFDCWD := -100 // AT_FDCWD: paths are absolute anyway
	_, _, e := syscall.Syscall6(uintptr(sysRenameat2), uintptr(atFDCWD), uintptr(unsafe.Pointer(p1)), uintptr(atFDCWD), uintptr(unsafe.Pointer(p2)), uintptr(flags), 0)
	if e != 0 {
		return e
	}
	return nil
}
