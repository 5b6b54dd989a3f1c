package lease_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan struct{} // one token per After call
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), added: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	}
	c.added <- struct{}{}
	return ch
}

// Advance moves the clock and fires the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = slices.DeleteFunc(c.waiters, func(w fakeWaiter) bool {
		if c.now.Before(w.at) {
			return false
		}
		w.ch <- c.now
		return true
	})
}

// waitAfter blocks until someone called After (the renewal loop is
// waiting for its next turn).
func (c *fakeClock) waitAfter(t *testing.T) {
	t.Helper()
	select {
	case <-c.added:
	case <-time.After(10 * time.Second):
		t.Fatal("the renewal loop never waited on the clock")
	}
}

var errDown = errors.New("store down (injected)")

// flaky wraps a ConditionalWriter with injected failures.
type flaky struct {
	s3backend.ConditionalWriter
	mu       sync.Mutex
	down     bool   // every call fails with errDown
	loseNext string // "error": the next put lands but reports errDown; "412": it lands but reports a failed precondition (a retried request)
	puts     int
}

func (f *flaky) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *flaky) setLoseNext(v string) { f.mu.Lock(); f.loseNext = v; f.mu.Unlock() }

func (f *flaky) before() (lose string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", errDown
	}
	lose, f.loseNext = f.loseNext, ""
	return lose, nil
}

func (f *flaky) after(lose, etag string, err error) (string, error) {
	f.mu.Lock()
	f.puts++
	f.mu.Unlock()
	switch {
	case err != nil:
		return "", err
	case lose == "error":
		return "", errDown
	case lose == "412":
		return "", s3backend.ErrPreconditionFailed
	}
	return etag, nil
}

func (f *flaky) Get(ctx context.Context, key string) ([]byte, string, error) {
	if _, err := f.before(); err != nil {
		return nil, "", err
	}
	return f.ConditionalWriter.Get(ctx, key)
}

func (f *flaky) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	lose, err := f.before()
	if err != nil {
		return "", err
	}
	etag, err := f.ConditionalWriter.PutIfAbsent(ctx, key, body)
	return f.after(lose, etag, err)
}

func (f *flaky) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	lose, err := f.before()
	if err != nil {
		return "", err
	}
	etag, err = f.ConditionalWriter.PutIfMatch(ctx, key, body, etag)
	return f.after(lose, etag, err)
}

// env is one replica with a fake clock.
type env struct {
	store *s3backend.FileStore
	cw    *flaky
	clock *fakeClock
	logs  *syncBuffer
}

func newEnv(t *testing.T) *env {
	st := s3backend.NewFileStore(filepath.Join(t.TempDir(), "replica"))
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &env{store: st, cw: &flaky{ConditionalWriter: st}, clock: newFakeClock(), logs: &syncBuffer{}}
}

// holder makes a distinct holder on a pretend host, as another machine
// would be.
func holder(host string, pid int, start time.Time) lease.Holder {
	return lease.Holder{Host: host, PID: pid, Start: start, ID: host + "-id"}
}

func (e *env) opts(h lease.Holder) lease.Options {
	return lease.Options{
		Holder: h, Clock: e.clock, Where: "file:///replica",
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
}

func (e *env) acquire(t *testing.T, h lease.Holder) *lease.Lease {
	t.Helper()
	l, err := lease.Acquire(t.Context(), e.cw, e.opts(h))
	if err != nil {
		t.Fatalf("Acquire as %s: %v", h.Host, err)
	}
	return l
}

// record reads the stored lease record.
func (e *env) record(t *testing.T) lease.Record {
	t.Helper()
	body, _, err := e.store.Get(t.Context(), lease.DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	var r lease.Record
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("lease record %q: %v", body, err)
	}
	return r
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
