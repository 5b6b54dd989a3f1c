package lease_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

var ltx = s3backend.FileInfo{DB: "app.db", Level: 0, MinTXID: 1, MaxTXID: 1}

func writeLTX(st s3backend.Store, ctx context.Context) error {
	_, err := st.Write(ctx, ltx, bytes.NewReader([]byte("ltx")), 3)
	return err
}

func TestFenceGuardsWritesAndDeletes(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		l := e.acquire(t, hostA)
		st := lease.Fence(e.store, l)
		if _, ok := st.(s3backend.Stater); !ok {
			t.Fatal("Fence hides the store's Stat")
		}
		if err := writeLTX(st, t.Context()); err != nil {
			t.Fatalf("Write while held: %v", err)
		}
		if _, err := st.(s3backend.Stater).Stat(t.Context(), ltx); err != nil {
			t.Fatalf("Stat: %v", err)
		}

		time.Sleep(25 * time.Second) // not renewed: fenced
		if err := writeLTX(st, t.Context()); !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("Write while fenced: got %v, want ErrFenced", err)
		}
		if err := st.Delete(t.Context(), []s3backend.FileInfo{ltx}); !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("Delete while fenced: got %v, want ErrFenced", err)
		}
		if got := list(t, e.store); got != 1 {
			t.Fatalf("the fenced Delete reached the store: %d objects left, want 1", got)
		}
		// Reads go on: restore and verify still work.
		if dbs, err := st.ListDatabases(t.Context()); err != nil || len(dbs) != 1 {
			t.Fatalf("ListDatabases while fenced: %q, %v", dbs, err)
		}
		if err := l.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(t.Context(), []s3backend.FileInfo{ltx}); err != nil {
			t.Fatalf("Delete after renewal: %v", err)
		}
	})
}

// The fenced store keeps the conditional objects' methods: reads pass
// through, writes stop while fenced (the head record a fenced primary
// must not publish).
func TestFenceGuardsConditionalWrites(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		l := e.acquire(t, hostA)
		st := lease.Fence(e.store, l)
		cw, ok := st.(s3backend.ConditionalWriter)
		if !ok {
			t.Fatal("Fence hides the store's conditional writes")
		}
		cr, ok := st.(s3backend.ChangeReader)
		if !ok {
			t.Fatal("Fence hides the store's GetIfNoneMatch")
		}
		etag, err := cw.PutIfAbsent(t.Context(), "head.json", []byte("1"))
		if err != nil {
			t.Fatalf("PutIfAbsent while held: %v", err)
		}
		time.Sleep(25 * time.Second) // not renewed: fenced
		if _, err := cw.PutIfMatch(t.Context(), "head.json", []byte("2"), etag); !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("PutIfMatch while fenced: got %v, want ErrFenced", err)
		}
		if _, err := cw.PutIfAbsent(t.Context(), "other.json", []byte("1")); !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("PutIfAbsent while fenced: got %v, want ErrFenced", err)
		}
		if err := cw.DeleteKey(t.Context(), "head.json"); !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("DeleteKey while fenced: got %v, want ErrFenced", err)
		}
		if body, got, err := cw.Get(t.Context(), "head.json"); err != nil || string(body) != "1" || got != etag {
			t.Fatalf("Get while fenced: %q, %s, %v; want the first version", body, got, err)
		}
		if _, _, err := cr.GetIfNoneMatch(t.Context(), "head.json", etag); !errors.Is(err, s3backend.ErrNotModified) {
			t.Fatalf("GetIfNoneMatch while fenced: got %v, want ErrNotModified", err)
		}
	})
}

// blockingStore holds every Write until its context ends.
type blockingStore struct {
	s3backend.Store
	started chan struct{}
}

func (b blockingStore) Write(ctx context.Context, info s3backend.FileInfo, r io.Reader, size int64) (s3backend.FileInfo, error) {
	close(b.started)
	<-ctx.Done()
	return s3backend.FileInfo{}, ctx.Err()
}

// A Write in flight when the lease is lost is cancelled at once.
func TestFenceCancelsUploadInFlight(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		l := e.acquire(t, hostA)
		bs := blockingStore{Store: e.store, started: make(chan struct{})}
		st := lease.Fence(bs, l)
		done := make(chan error, 1)
		go func() { done <- writeLTX(st, t.Context()) }()
		<-bs.started
		time.Sleep(31 * time.Second)
		e.acquire(t, hostB)
		if err := l.Renew(t.Context()); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Renew: got %v, want ErrLost", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "host-b") {
				t.Fatalf("Write in flight: got %v, want ErrLost naming host-b", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the Write in flight was not cancelled when the lease was lost")
		}
	})
}

func list(t *testing.T, st s3backend.Store) int {
	t.Helper()
	infos, err := st.List(t.Context(), ltx.DB, ltx.Level)
	if err != nil {
		t.Fatal(err)
	}
	return len(infos)
}
