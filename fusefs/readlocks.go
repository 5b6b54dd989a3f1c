package fusefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The read locks walfs takes to read a WAL database while SQLite runs.
//
// SQLite copies WAL frames into the database file (a checkpoint) only while
// it holds WAL_READ_LOCK(0) of the -shm exclusively, and starts the WAL over
// (overwriting committed frames) only while it holds WAL_READ_LOCK(1..4)
// exclusively. A shared lock on READ_LOCK(0) and READ_LOCK(1) therefore keeps
// the database file and the WAL's committed frames as they are, without
// stopping any writer: a checkpoint that finds them taken copies nothing
// (an automatic one tries again at a later commit, PRAGMA wal_checkpoint
// reports busy, a checkpoint with a busy timeout waits) and a writer that
// cannot restart the WAL appends to it. Readers use other slots. This is
// what any reader of the database may do to SQLite's checkpoints.

// HoldWAL takes, through the mount, shared locks on WAL_READ_LOCK(0) and
// WAL_READ_LOCK(1) of database rel's -shm, so that until release is called
// no checkpoint writes the database file and the WAL does not restart; WAL
// writers go on appending. shm is false when there is no -shm to hold
// (rollback journal; a WAL connection in exclusive locking mode holds the
// database's lock, which Quiet reports). why is not empty when the caller
// must try later: a checkpoint holds one of the locks now, or a connection
// holds a write lock on the database file (exclusive locking mode, a change
// of journal mode).
//
// The locks are open file description locks on walfs's own descriptor: they
// conflict with SQLite's POSIX locks, and closing the descriptor releases
// them. Not to be called from a FUSE request: the open is served by this
// mount.
func (m *Mount) HoldWAL(rel string) (release func(), shm bool, why string) {
	none := func() {}
	f, err := os.OpenFile(filepath.Join(m.mountPoint, filepath.FromSlash(rel)+"-shm"), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return none, false, ""
	}
	if err != nil {
		return none, false, "cannot open its -shm to hold off checkpoints: " + err.Error()
	}
	release = func() {
		f.Close() //walfs:ignore-error opened read only; closing drops the locks
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: shmReadLock0, Len: 2}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		release()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return none, false, "a checkpoint is running"
		}
		return none, false, fmt.Sprintf("cannot lock its -shm: %v", err)
	}
	if ok, why := m.quiet(rel, false); !ok {
		release()
		return none, false, why
	}
	return release, true, ""
}
