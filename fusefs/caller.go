package fusefs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Permissions, who checks what:
//
//   - The kernel checks every permission (mount option default_permissions)
//     against the attributes walfs returned: open, lookup, create, unlink
//     and rename (sticky directories included), chmod, chown, utimensat,
//     truncate. walfs then performs the operation with its own credentials.
//   - What the kernel cannot decide is who owns a new file, which group it
//     gets (a setgid directory gives its own) and which mode bits survive
//     (a setgid bit the creator may not set is dropped). The backing file
//     system decides that from the creating thread's credentials, so walfs
//     creates files, directories, nodes and symlinks on a thread that has
//     taken the caller's filesystem uid, gid and supplementary groups
//     (credsFor, asCaller): the result is the disk's own, not a re-creation
//     of its rules.
//   - The kernel has already applied the caller's umask to the mode of every
//     create request, so the mount process runs with umask 0 (New).

// creds are the identity a backing-file operation runs under.
type creds struct {
	uid, gid uint32
	groups   []uint32
}

// identity is the mount process's own credentials, and whether it may take
// another's (only root may: setfsuid and setgroups need CAP_SETUID and
// CAP_SETGID).
type identity struct {
	creds
	canSwitch bool
}

func processIdentity() (identity, error) {
	id := identity{creds: creds{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, canSwitch: os.Geteuid() == 0}
	groups, err := syscall.Getgroups()
	if err != nil {
		return id, fmt.Errorf("read own supplementary groups: %w", err)
	}
	for _, g := range groups {
		id.groups = append(id.groups, uint32(g))
	}
	return id, nil
}

// needSwitch reports whether work for caller c must run under c's
// credentials: only when the process can switch and c differs from it. A
// caller with the process's own uid and gid (root apps under a root mount)
// costs nothing.
func (id *identity) needSwitch(c *fuse.Caller) bool {
	return id.canSwitch && (c.Uid != id.uid || c.Gid != id.gid)
}

// asCaller runs fn with the filesystem credentials of the FUSE caller in
// ctx, on a thread of its own that is given back to the runtime only once
// the process's credentials are restored: a thread that could not be
// restored is discarded (its goroutine exits locked).
func (id *identity) asCaller(ctx context.Context, fn func() error) error {
	c, ok := fuse.FromContext(ctx)
	if !ok || !id.needSwitch(c) {
		return fn()
	}
	want := creds{uid: c.Uid, gid: c.Gid, groups: callerGroups(c.Pid)}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := setThreadCreds(want); err != nil {
			if restoreErr := setThreadCreds(id.creds); restoreErr == nil {
				runtime.UnlockOSThread()
			}
			done <- fmt.Errorf("take the credentials of uid %d: %w", want.uid, err)
			return
		}
		err := fn()
		if restoreErr := setThreadCreds(id.creds); restoreErr != nil {
			done <- err // the thread dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// setThreadCreds sets the calling thread's (not the process's) filesystem
// uid and gid and supplementary groups. The raw system calls act on one
// thread only, unlike syscall.Setgroups, which the Go runtime applies to
// every thread.
func setThreadCreds(c creds) error {
	var ptr unsafe.Pointer
	if len(c.groups) > 0 {
		ptr = unsafe.Pointer(&c.groups[0])
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(c.groups)), uintptr(ptr), 0); errno != 0 {
		return fmt.Errorf("setgroups: %w", errno)
	}
	// Setting again proves the first call took.
	setfsid(syscall.SYS_SETFSGID, c.gid)
	if got := setfsid(syscall.SYS_SETFSGID, c.gid); got != c.gid {
		return fmt.Errorf("setfsgid %d did not take", c.gid)
	}
	setfsid(syscall.SYS_SETFSUID, c.uid)
	if got := setfsid(syscall.SYS_SETFSUID, c.uid); got != c.uid {
		return fmt.Errorf("setfsuid %d did not take", c.uid)
	}
	return nil
}

// setfsid calls setfsuid or setfsgid (trap) for the calling thread and
// returns the id it had before.
func setfsid(trap uintptr, id uint32) (prev uint32) {
	//walfs:ignore-error setfsuid and setfsgid report no errors: they return the previous id, which the caller checks
	r, _, _ := syscall.RawSyscall(trap, uintptr(id), 0, 0)
	return uint32(r)
}

// callerGroups reads the supplementary groups of the thread that made the
// request (FUSE passes its thread id). A caller that has exited, or lives in
// another pid namespace, gets none: group-based access then fails as it
// would for a user in no groups.
func callerGroups(tid uint32) []uint32 {
	if tid == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return nil
	}
	return parseGroups(b)
}

// parseGroups extracts the "Groups:" line of a /proc/PID/status file.
func parseGroups(status []byte) []uint32 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line, ok := bytes.CutPrefix(sc.Bytes(), []byte("Groups:"))
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range bytes.Fields(line) {
			g, err := strconv.ParseUint(string(f), 10, 32)
			if err != nil {
				return nil
			}
			out = append(out, uint32(g))
		}
		return out
	}
	return nil
}
