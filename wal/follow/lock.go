package follow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// SQLite's lock bytes (os.h): a reader holds a read lock on one byte of
// the shared range for the whole of its transaction and briefly one on the
// pending byte while it takes it; a writer about to change the file holds
// the pending byte and the whole shared range for writing.
const (
	pendingByte = 0x40000000
	reservedLen = 1
	sharedFirst = pendingByte + 2
	sharedSize  = 510
)

// LockFunc takes SQLite's EXCLUSIVE lock on the database rel (relative to
// the data dir) and returns the function that releases it. waiting is
// called with true while readers keep it from being granted.
type LockFunc func(ctx context.Context, rel string, waiting func(bool)) (unlock func() error, err error)

// MountLock returns the LockFunc that locks databases through the mount at
// mountPoint: readers' locks live on the mount's inodes, so that is where
// the follower must take its own. It opens the database read-write (the
// follower mount lets only walfs itself do that) and uses open file
// description locks, which belong to the descriptor, not to the process.
func MountLock(mountPoint string) LockFunc {
	return func(ctx context.Context, rel string, waiting func(bool)) (func() error, error) {
		path := filepath.Join(mountPoint, filepath.FromSlash(rel))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("lock %s for an update: %w", rel, err)
		}
		unlock := func() error { return f.Close() } // closing the description drops its locks
		if err := exclusive(ctx, f, waiting); err != nil {
			return nil, errors.Join(fmt.Errorf("lock %s for an update: %w", rel, err), unlock())
		}
		return unlock, nil
	}
}

// noLock is the LockFunc before the mount exists: nobody reads yet.
func noLock(context.Context, string, func(bool)) (func() error, error) {
	return func() error { return nil }, nil
}

// exclusive takes the pending byte, the reserved byte and then the shared
// range for writing, the way SQLite's own writer does, retrying until
// readers let go or ctx ends. Holding the pending byte keeps new readers
// out (they see SQLITE_BUSY and retry) so a stream of short readers cannot
// starve the update.
func exclusive(ctx context.Context, f *os.File, waiting func(bool)) error {
	steps := []struct{ start, n int64 }{{pendingByte, 1}, {pendingByte + 1, reservedLen}, {sharedFirst, sharedSize}}
	delay := 200 * time.Microsecond
	told := false
	defer func() {
		if told && waiting != nil {
			waiting(false)
		}
	}()
	for _, s := range steps {
		for {
			lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: s.start, Len: s.n}
			err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("fcntl lock at %#x: %w", s.start, err)
			}
			if !told && waiting != nil {
				told = true
				waiting(true)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("readers kept the database locked: %w", context.Cause(ctx))
			case <-time.After(delay):
			}
			delay = min(2*delay, 20*time.Millisecond)
		}
	}
	return nil
}
