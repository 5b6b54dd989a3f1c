package fusefs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Holder is a process with a file open under a mount point.
type Holder struct {
	PID     int
	Command string
	Path    string
}

func (h Holder) String() string {
	if h.Command != "" {
		return fmt.Sprintf("pid %d (%s) holds %s", h.PID, h.Command, h.Path)
	}
	return fmt.Sprintf("pid %d holds %s", h.PID, h.Path)
}

// Holders lists processes (visible to us) with files or a working directory
// under mountPoint. One entry per process. It names what it can: processes
// it may not inspect, or that exit meanwhile, are left out, and without a
// readable /proc the list is empty.
func Holders(mountPoint string) []Holder {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []Holder
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		base := filepath.Join("/proc", p.Name())
		path := ""
		if cwd, err := os.Readlink(filepath.Join(base, "cwd")); err == nil && within(cwd, mountPoint) {
			path = cwd
		}
		if path == "" {
			fds, err := os.ReadDir(filepath.Join(base, "fd"))
			if err != nil {
				continue
			}
			for _, fd := range fds {
				target, err := os.Readlink(filepath.Join(base, "fd", fd.Name()))
				if err == nil && within(target, mountPoint) {
					path = target
					break
				}
			}
		}
		if path == "" {
			continue
		}
		h := Holder{PID: pid, Path: path}
		if comm, err := os.ReadFile(filepath.Join(base, "comm")); err == nil {
			h.Command = strings.TrimSpace(string(comm))
		}
		out = append(out, h)
	}
	return out
}
