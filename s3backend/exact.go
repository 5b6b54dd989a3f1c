package s3backend

import (
	"fmt"
	"io"
)

// exactReader yields exactly size bytes from r and fails with ErrSizeMismatch
// when r ends early or has more to give. The failure surfaces from Read, so an
// upload that consumes it aborts instead of storing a short or cut object.
type exactReader struct {
	r    io.Reader
	size int64
	n    int64
	done bool
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, size: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.done {
		return 0, io.EOF
	}
	if e.n >= e.size {
		// All bytes delivered: r must be at EOF now.
		var one [1]byte
		for {
			k, err := e.r.Read(one[:])
			if k > 0 {
				return 0, fmt.Errorf("%w: reader has more than %d bytes", ErrSizeMismatch, e.size)
			}
			if err == io.EOF {
				e.done = true
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if rem := e.size - e.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := e.r.Read(p)
	e.n += int64(k)
	if err == io.EOF {
		if e.n < e.size {
			return k, fmt.Errorf("%w: reader ended after %d of %d bytes", ErrSizeMismatch, e.n, e.size)
		}
		err = nil
	}
	return k, err
}
