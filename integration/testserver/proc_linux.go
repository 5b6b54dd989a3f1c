package testserver

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcAttrs makes the kernel kill the server if the test binary dies
// without running its cleanups, so no server outlives a crashed test.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

var errXattrUnsupported = errors.New("xattrs unsupported")

func setxattr(path, name string, value []byte) error {
	err := syscall.Setxattr(path, name, value, 0)
	if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) {
		return errXattrUnsupported
	}
	return err
}
