package lease

import (
	"context"
	"fmt"
	"io"

	"github.com/walfs/walfs/s3backend"
)

// Fence returns store with every Write and Delete guarded by l: they fail
// with l's fence error (matching ErrFenced) instead of reaching the store
// while l is fenced, and a Write in flight is cancelled the moment l is lost.
// Reads pass through. A nil l returns store unchanged. The result
// implements s3backend.Stater when store does.
func Fence(store s3backend.Store, l *Lease) s3backend.Store {
	if l == nil {
		return store
	}
	f := fenced{Store: store, l: l}
	if st, ok := store.(s3backend.Stater); ok {
		return fencedStater{f, st}
	}
	return f
}

type fenced struct {
	s3backend.Store
	l *Lease
}

var _ s3backend.Stater = fencedStater{}

type fencedStater struct {
	fenced
	st s3backend.Stater
}

func (f fencedStater) Stat(ctx context.Context, info s3backend.FileInfo) (s3backend.FileInfo, error) {
	return f.st.Stat(ctx, info)
}

// Write uploads only while the lease holds.
func (f fenced) Write(ctx context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	if err := f.l.Check(); err != nil {
		return s3backend.FileInfo{}, fmt.Errorf("write %s: %w", s3backend.Key(info), err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(f.l.lost, cancel)
	defer stop()
	out, err := f.Store.Write(ctx, info, r, size)
	if lerr := f.l.Err(); err != nil && lerr != nil {
		return s3backend.FileInfo{}, fmt.Errorf("write %s: %w (%w)", s3backend.Key(info), lerr, err)
	}
	return out, err
}

// Delete removes objects only while the lease holds: after a takeover they
// may be what the new holder needs.
func (f fenced) Delete(ctx context.Context, infos []s3backend.FileInfo) error {
	if err := f.l.Check(); err != nil {
		return fmt.Errorf("delete %d objects: %w", len(infos), err)
	}
	return f.Store.Delete(ctx, infos)
}
