package fusefs

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// SQLite's lock bytes (sqlite3.c, os_unix.c and wal.c). A connection about to
// write a rollback-journal database holds a write lock on the RESERVED byte,
// then PENDING, then the whole SHARED range (EXCLUSIVE); a WAL writer holds
// the WAL_WRITE lock of the -shm file, a checkpointer CKPT, a recovering
// connection RECOVER.
const (
	pendingByte   = 0x40000000
	sharedSize    = 510
	shmWriteLock  = 120 // WAL_WRITE_LOCK
	shmRecoverEnd = 122 // WAL_RECOVER_LOCK; CKPT is 121
	shmReadLock0  = 123 // WAL_READ_LOCK(0); READ_LOCK(1) is the next byte (readlocks.go)
)

// heldLock is one line of /proc/locks.
type heldLock struct {
	write      bool
	pid        int
	dev        string // "%02x:%02x", hex, as /proc/locks prints it
	ino        uint64
	start, end uint64 // inclusive; end is MaxUint64 for EOF
}

// parseLocks reads /proc/locks; lines of blocked waiters ("->") and lines it
// cannot read are skipped.
func parseLocks(b []byte) []heldLock {
	var out []heldLock
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// id: class mode kind pid dev:major:ino start end
		if len(f) != 8 || f[1] == "->" {
			continue
		}
		id := strings.Split(f[5], ":")
		if len(id) != 3 {
			continue
		}
		ino, err1 := strconv.ParseUint(id[2], 10, 64)
		start, err2 := strconv.ParseUint(f[6], 10, 64)
		end := uint64(math.MaxUint64)
		var err3 error
		if f[7] != "EOF" {
			end, err3 = strconv.ParseUint(f[7], 10, 64)
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil {
			pid = 0 // unknown; the lock counts all the same
		}
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, heldLock{write: f[3] == "WRITE", pid: pid, dev: id[0] + ":" + id[1], ino: ino, start: start, end: end})
	}
	return out
}

// writeLockOn returns the first write lock on (dev, ino) overlapping
// [start, end].
func writeLockOn(locks []heldLock, dev string, ino, start, end uint64) (heldLock, bool) {
	for _, l := range locks {
		if l.write && l.dev == dev && l.ino == ino && l.start <= end && l.end >= start {
			return l, true
		}
	}
	return heldLock{}, false
}

// lockDev converts mountinfo's decimal "major:minor" to /proc/locks' hex.
func lockDev(mountinfoDev string) (string, error) {
	maj, min, ok := strings.Cut(mountinfoDev, ":")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return "", fmt.Errorf("device %q: want major:minor", mountinfoDev)
	}
	return fmt.Sprintf("%02x:%02x", a, b), nil
}

// Quiet reports whether no SQLite connection holds a write lock on the
// database rel (a slash path relative to the data dir), and if one does,
// which process. POSIX locks on a walfs mount are kept by the kernel (walfs
// does not take part in locking), so it asks the kernel's lock table. A
// database the kernel has not looked up cannot be locked.
func (m *Mount) Quiet(rel string) (bool, string) {
	return m.quiet(rel, true)
}

// quiet is Quiet; with shm false it looks at the database file's locks only
// (a WAL writer's and a checkpointer's locks on the -shm are ignored).
func (m *Mount) quiet(rel string, shm bool) (bool, string) {
	if m.lockDev == "" {
		return true, ""
	}
	dir := m.root
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		if dir = dir.GetChild(p); dir == nil {
			return true, ""
		}
	}
	name := parts[len(parts)-1]
	db, shmNode := dir.GetChild(name), dir.GetChild(name+"-shm")
	if !shm {
		shmNode = nil
	}
	if db == nil && shmNode == nil {
		return true, ""
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, "cannot read the kernel's lock table: " + err.Error()
	}
	locks := parseLocks(b)
	if db != nil {
		if l, ok := writeLockOn(locks, m.lockDev, db.StableAttr().Ino, pendingByte, pendingByte+1+sharedSize); ok {
			return false, fmt.Sprintf("process %d holds a write lock on the database", l.pid)
		}
	}
	if shmNode != nil {
		if l, ok := writeLockOn(locks, m.lockDev, shmNode.StableAttr().Ino, shmWriteLock, shmRecoverEnd); ok {
			return false, fmt.Sprintf("process %d holds a write lock on the WAL", l.pid)
		}
	}
	return true, ""
}
