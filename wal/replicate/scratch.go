package replicate

import (
	"errors"
	"fmt"
	"os"
)

// Scratch files live in the state dir's tmp/ while a merge, a compaction, a
// download or a snapshot needs them; initMaintenance removes those a killed
// run left.

// removeScratch closes and removes the scratch file f. One left behind holds
// disk space until the next start, so a failure to remove it is an error.
func removeScratch(f *os.File) error {
	if err := errors.Join(f.Close(), os.Remove(f.Name())); err != nil {
		return fmt.Errorf("remove scratch file: %w", err)
	}
	return nil
}
