package lease_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

// inBubble runs f with a fresh env in a synctest bubble. Time there stands
// still until every goroutine of the bubble waits, so time.Sleep(d) in a
// test is "d passes" and synctest.Wait() is "the renewal loop waits for its
// next turn". The bubble's clock starts at 2000-01-01 00:00 UTC.
func inBubble(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) { f(t, newEnv(t)) })
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

// env is one replica.
type env struct {
	store *s3backend.FileStore
	cw    *flaky
	logs  *syncBuffer
}

func newEnv(t *testing.T) *env {
	st := s3backend.NewFileStore(filepath.Join(t.TempDir(), "replica"))
	if err := st.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &env{store: st, cw: &flaky{ConditionalWriter: st}, logs: &syncBuffer{}}
}

// holder makes a distinct holder on a pretend host, as another machine
// would be.
func holder(host string, pid int, start time.Time) lease.Holder {
	return lease.Holder{Host: host, PID: pid, Start: start, ID: host + "-id"}
}

func (e *env) opts(h lease.Holder) lease.Options {
	return lease.Options{
		Holder: h, Where: "file:///replica",
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
