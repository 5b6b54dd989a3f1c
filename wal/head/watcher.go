package head

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/walfs/walfs/s3backend"
)

// ErrNoHead means the replica has no head object: no primary publishes one
// (an older walfs, a store without conditional writes, or none has uploaded
// yet). A follower lists the replica instead.
var ErrNoHead = errors.New("no head record published")

// Watcher follows the head object for a follower: each Poll is one
// conditional GET that returns no body while the object is unchanged.
// Methods are safe for concurrent use (its mutex is never held across the
// request); polls are meant to come from one goroutine.
type Watcher struct {
	cr s3backend.ChangeReader

	mu   sync.Mutex
	etag string // of rec; "" before the first record was read
	rec  Record
}

// NewWatcher returns a Watcher that has seen nothing yet: its first Poll
// reads the object.
func NewWatcher(cr s3backend.ChangeReader) *Watcher {
	return &Watcher{cr: cr}
}

// Poll reads the head object if it changed since the last Poll. It returns
// the current record and changed=true when it read a new version, the
// record of the last Poll and changed=false when the object is unchanged
// (one request, no body), and an error matching ErrNoHead when there is no
// object (the follower lists instead). An unreadable object gives an error
// matching ErrUnreadable, and every Poll reads it again until it is
// replaced; any other error is the store's and changes nothing.
func (w *Watcher) Poll(ctx context.Context) (rec Record, changed bool, err error) {
	w.mu.Lock()
	last := w.etag
	w.mu.Unlock()
	body, etag, err := w.cr.GetIfNoneMatch(ctx, Key, last)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, s3backend.ErrNotModified):
		return w.rec, false, nil
	case errors.Is(err, s3backend.ErrNotFound):
		w.etag, w.rec = "", Record{}
		return Record{}, false, fmt.Errorf("%w: %s is missing", ErrNoHead, Key)
	case err != nil:
		return Record{}, false, fmt.Errorf("poll head record: %w", err)
	}
	rec, err = Parse(body)
	if err != nil {
		w.etag, w.rec = "", Record{}
		return Record{}, false, fmt.Errorf("poll head record %s: %w", Key, err)
	}
	w.etag, w.rec = etag, rec
	return rec, true, nil
}

// Last returns the record of the last successful Poll (zero before one).
func (w *Watcher) Last() Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rec
}
