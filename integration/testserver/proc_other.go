//go:build !linux

package testserver

import (
	"errors"
	"os/exec"
)

func setProcAttrs(cmd *exec.Cmd) {}

var errXattrUnsupported = errors.New("xattrs unsupported")

// setxattr is not probed off Linux: assume a sidecar is needed.
func setxattr(path, name string, value []byte) error { return errXattrUnsupported }
