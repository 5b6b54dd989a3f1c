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
// implements s3backend.Stater when store does, and also
// s3backend.ConditionalWriter and s3backend.ChangeReader when store
// implements all three: its conditional reads pass through and its
// conditional writes are guarded like Write (the head record a primary
// publishes goes through them; the lease's own writes do not: it holds the
// unfenced store).
func Fence(store s3backend.Store, l *Lease) s3backend.Store {
	if l == nil {
		return store
	}
	f := fenced{Store: store, l: l}
	st, stater := store.(s3backend.Stater)
	cw, conditional := store.(s3backend.ConditionalWriter)
	cr, changes := store.(s3backend.ChangeReader)
	switch {
	case stater && conditional && changes:
		return fencedFull{fencedStater{f, st}, cw, cr}
	case stater:
		return fencedStater{f, st}
	}
	return f
}

type fenced struct {
	s3backend.Store
	l *Lease
}

var (
	_ s3backend.Stater            = fencedStater{}
	_ s3backend.Stater            = fencedFull{}
	_ s3backend.ConditionalWriter = fencedFull{}
	_ s3backend.ChangeReader      = fencedFull{}
)

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

// fencedFull also forwards the conditional objects' methods.
type fencedFull struct {
	fencedStater
	cw s3backend.ConditionalWriter
	cr s3backend.ChangeReader
}

func (f fencedFull) Get(ctx context.Context, key string) ([]byte, string, error) {
	return f.cw.Get(ctx, key)
}

func (f fencedFull) GetIfNoneMatch(ctx context.Context, key, etag string) ([]byte, string, error) {
	return f.cr.GetIfNoneMatch(ctx, key, etag)
}

// PutIfAbsent creates key only while the lease holds.
func (f fencedFull) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	if err := f.l.Check(); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return f.cw.PutIfAbsent(ctx, key, body)
}

// PutIfMatch replaces key only while the lease holds.
func (f fencedFull) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	if err := f.l.Check(); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return f.cw.PutIfMatch(ctx, key, body, etag)
}

// DeleteKey removes key only while the lease holds.
func (f fencedFull) DeleteKey(ctx context.Context, key string) error {
	if err := f.l.Check(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return f.cw.DeleteKey(ctx, key)
}
