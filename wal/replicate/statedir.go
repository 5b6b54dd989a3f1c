package replicate

import (
	"fmt"
	"os"
)

// MakeStateDir creates dir with mode 0700, or tightens an existing one to
// 0700 when group or others have any access: it holds spooled database
// pages, and an older walfs created it under the process umask. The mode is
// given explicitly because a mount runs with umask 0.
func MakeStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("create state dir %s: not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make state dir %s private: %w", dir, err)
		}
	}
	return nil
}
