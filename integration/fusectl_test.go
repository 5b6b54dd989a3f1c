package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// What a test needs when a FUSE daemon hangs: what its threads wait for in
// the kernel, and a way to end its connection (the fusectl filesystem).

const fusectlDir = "/sys/fs/fuse/connections"

// kernelStacks returns the state, wait channel and kernel stack of every
// thread of pid.
func kernelStacks(pid int) string {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	var b strings.Builder
	for _, task := range tasks {
		stat, _ := os.ReadFile(filepath.Join(task, "stat"))
		wchan, _ := os.ReadFile(filepath.Join(task, "wchan"))
		stack, _ := os.ReadFile(filepath.Join(task, "stack"))
		state := ""
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 {
			state = f[0]
		}
		fmt.Fprintf(&b, "thread %s state %s wchan %s\n%s", filepath.Base(task), state, wchan, stack)
	}
	return b.String()
}

// abortFUSE aborts the FUSE connection of the mount at mnt through fusectl
// (mounting it if needed) and detaches the mount; it says what it did.
func abortFUSE(mnt string) string {
	dev := mountDevice(mnt)
	if dev == "" {
		return "not mounted at " + mnt
	}
	minor := dev[strings.IndexByte(dev, ':')+1:]
	if _, err := os.Stat(filepath.Join(fusectlDir, minor)); os.IsNotExist(err) {
		if err := syscall.Mount("none", fusectlDir, "fusectl", 0, ""); err == nil {
			defer syscall.Unmount(fusectlDir, 0)
		}
	}
	err := os.WriteFile(filepath.Join(fusectlDir, minor, "abort"), []byte("1"), 0)
	syscall.Unmount(mnt, syscall.MNT_DETACH)
	if err != nil {
		return fmt.Sprintf("could not abort FUSE connection %s: %v", minor, err)
	}
	return "aborted FUSE connection " + minor
}

// mountDevice returns the major:minor of the mount at mnt, or "".
func mountDevice(mnt string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == mnt {
			return f[2]
		}
	}
	return ""
}
