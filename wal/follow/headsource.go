package follow

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/head"
)

// headSource follows the head object the primary publishes (wal/head):
// one conditional GET per poll, no listing. Where no readable head object
// exists it lists instead, poll by poll, until one appears.
type headSource struct {
	w       *head.Watcher
	list    Source
	listing atomic.Bool // the last poll found no head object
}

// NewSource returns the cheapest Source st allows: the head object when st
// can read it conditionally, else listings.
func NewSource(st s3backend.Store) Source {
	cr, ok := st.(s3backend.ChangeReader)
	if !ok {
		return ListSource(st)
	}
	return &headSource{w: head.NewWatcher(cr), list: ListSource(st)}
}

func (s *headSource) String() string {
	if s.listing.Load() {
		return "no head object published: listing the replica on every poll"
	}
	return "one conditional GET of the head object per poll"
}

func (s *headSource) Poll(ctx context.Context) (map[string]Latest, bool, error) {
	rec, changed, err := s.w.Poll(ctx)
	if errors.Is(err, head.ErrNoHead) || errors.Is(err, head.ErrUnreadable) {
		s.listing.Store(true)
		return s.list.Poll(ctx)
	}
	if err != nil || !changed {
		return nil, false, err
	}
	s.listing.Store(false)
	out := make(map[string]Latest, len(rec.DBs))
	for db, e := range rec.DBs {
		l := Latest{TXID: e.TXID, Checksum: e.Checksum, Commit: e.Commit, Deleted: e.Deleted}
		for _, f := range e.Files {
			l.Files = append(l.Files, f.Info(db))
		}
		out[db] = l
	}
	return out, true, nil
}
