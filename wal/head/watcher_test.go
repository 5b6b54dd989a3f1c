package head_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/head"
)

func TestWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newCtrlStore()
		w := head.NewWatcher(s)
		if _, _, err := w.Poll(t.Context()); !errors.Is(err, head.ErrNoHead) {
			t.Fatalf("Poll with no head object: %v, want ErrNoHead", err)
		}
		p := newPublisher(t, s, nil)
		upload(p, "a.db", 1, 2)
		synctest.Wait()
		rec, changed, err := w.Poll(t.Context())
		if err != nil || !changed || rec.DBs["a.db"].TXID != 2 {
			t.Fatalf("first Poll: %+v, %v, %v", rec, changed, err)
		}
		for range 3 {
			rec, changed, err = w.Poll(t.Context())
			if err != nil || changed || rec.DBs["a.db"].TXID != 2 {
				t.Fatalf("Poll of an unchanged head: %+v, %v, %v; want the last record, unchanged", rec, changed, err)
			}
		}
		_, etag, err := s.Store.Get(t.Context(), head.Key)
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		polls := append([]string(nil), s.polls...)
		s.mu.Unlock()
		if len(polls) != 5 || polls[0] != "" || polls[1] != "" || polls[2] != etag || polls[4] != etag {
			t.Fatalf("polls sent ETags %q, want none twice then %s", polls, etag)
		}
		upload(p, "a.db", 3, 3)
		synctest.Wait()
		rec, changed, err = w.Poll(t.Context())
		if err != nil || !changed || rec.DBs["a.db"].TXID != 3 || w.Last().Seq != rec.Seq {
			t.Fatalf("Poll after a publish: %+v, %v, %v", rec, changed, err)
		}
	})
}

// An unreadable head is an error every poll until it is replaced.
func TestWatcherUnreadable(t *testing.T) {
	s := newCtrlStore()
	etag, err := s.Store.PutIfAbsent(t.Context(), head.Key, []byte(`{"version":99}`))
	if err != nil {
		t.Fatal(err)
	}
	w := head.NewWatcher(s)
	for range 2 {
		if _, _, err := w.Poll(t.Context()); !errors.Is(err, head.ErrUnreadable) {
			t.Fatalf("Poll: %v, want ErrUnreadable", err)
		}
	}
	if _, err := s.Store.PutIfMatch(t.Context(), head.Key, []byte(`{"version":1,"seq":1,"dbs":{}}`), etag); err != nil {
		t.Fatal(err)
	}
	if rec, changed, err := w.Poll(t.Context()); err != nil || !changed || rec.Seq != 1 {
		t.Fatalf("Poll after the head was replaced: %+v, %v, %v", rec, changed, err)
	}
	// A store error is passed on as such.
	if _, _, err := head.NewWatcher(failingReader{}).Poll(t.Context()); !errors.Is(err, s3backend.ErrUnreachable) || errors.Is(err, head.ErrNoHead) {
		t.Fatalf("Poll of an unreachable store: %v", err)
	}
}

type failingReader struct{}

func (failingReader) GetIfNoneMatch(context.Context, string, string) ([]byte, string, error) {
	return nil, "", s3backend.ErrUnreachable
}
