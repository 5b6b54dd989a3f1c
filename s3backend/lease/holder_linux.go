package lease

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processIdentity returns the kernel's boot id and this process's pid
// namespace, which together say whether a pid seen in a record means the
// same process table as ours.
func processIdentity() (bootID, pidNS string) {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		bootID = strings.TrimSpace(string(b))
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		pidNS = ns
	}
	return bootID, pidNS
}

// holderGone reports whether h is a process of this kernel and pid
// namespace that no longer exists. Anything it cannot prove (another host,
// another namespace, a reboot, a pid reused by a live process) counts as
// not gone: the lease then has to expire.
func holderGone(h Holder) bool {
	boot, ns := processIdentity()
	if h.BootID == "" || h.PIDNamespace == "" || h.BootID != boot || h.PIDNamespace != ns || h.PID <= 0 {
		return false
	}
	if h.PID == os.Getpid() {
		return false // this very process (another Lease in it) is alive
	}
	if errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH) {
		return true
	}
	return exited(h.PID)
}

// exited reports whether pid is a zombie: it has exited (killed with -9,
// say) but its parent has not collected it yet. Its pid cannot be reused
// until then, so it is the holder, and it is gone.
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state == 'Z' || state == 'X'
}
