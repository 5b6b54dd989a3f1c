package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/walfs/walfs/wal/replicate"
)

// chooseCapture resolves --capture to a capture path and says why.
func chooseCapture(want replicate.CaptureMode, durability replicate.Durability) (replicate.CaptureMode, string) {
	switch want {
	case replicate.CaptureUserspace:
		return replicate.CaptureUserspace, "requested with --capture userspace"
	case replicate.CapturePassthrough:
		return replicate.CapturePassthrough, "requested with --capture passthrough"
	}
	if durability == replicate.DurabilitySync {
		return replicate.CaptureUserspace, "--durability sync needs every WAL write to come through walfs"
	}
	if os.Geteuid() != 0 {
		return replicate.CaptureUserspace, "FUSE passthrough needs root (CAP_SYS_ADMIN)"
	}
	major, minor, ok := kernelVersion()
	if !ok || major < 6 || major == 6 && minor < 9 {
		return replicate.CaptureUserspace, fmt.Sprintf("FUSE passthrough needs Linux >= 6.9 (this is %d.%d)", major, minor)
	}
	return replicate.CapturePassthrough, fmt.Sprintf("Linux %d.%d and root: the kernel writes the WAL, walfs reads new frames back", major, minor)
}

func kernelVersion() (major, minor int, ok bool) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return 0, 0, false
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	parts := strings.SplitN(b.String(), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, err1 == nil && err2 == nil
}
