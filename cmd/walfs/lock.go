package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/wal/replicate"
)

// lockDataDir takes an exclusive lock on the data dir for the life of this
// process. Two mounts of one data dir would interleave their spools and each
// would take over the other's control socket; the kernel drops the lock when
// the process dies, so a crash never leaves it held.
func lockDataDir(dataDir string) (release func(), err error) {
	stateDir := filepath.Join(dataDir, fusefs.StateDirName)
	if err := replicate.MakeStateDir(stateDir); err != nil {
		return nil, err
	}
	path := filepath.Join(stateDir, "mount.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock data dir %s: %w", dataDir, err)
		}
		mounts, _ := fusefs.Mounts()
		for _, m := range mounts {
			if m.FsType == "fuse."+fusefs.FsType && m.Source == dataDir {
				return nil, fmt.Errorf("data dir %s is already served by the walfs mount at %s (unmount it first: walfs unmount %s; or give another --data-dir)", dataDir, m.MountPoint, m.MountPoint)
			}
		}
		return nil, fmt.Errorf("data dir %s is in use by another walfs process (stop it first, or give another --data-dir)", dataDir)
	}
	return func() { f.Close() }, nil
}
