//go:build !unix

package s3backend

import (
	"fmt"
	"os"
)

// tryLockExclusive has no cross-process lock to take here: the file store's
// conditional writes are unsupported on this platform.
func tryLockExclusive(*os.File) (bool, error) {
	return false, fmt.Errorf("%w: no flock on this platform", ErrConditionalUnsupported)
}
