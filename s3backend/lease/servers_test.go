package lease_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

// The lease's whole life on real servers: taken and renewed, refused to a
// second writer, released and taken at once by the next, taken over after
// expiry (in a synctest bubble, so the TTL passes at once) with the old
// holder fenced.
func TestLeaseOnServers(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...testserver.Option) *testserver.Server{
		"minio": testserver.StartMinIO, "versitygw": testserver.StartVersityGW,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			st, err := s3backend.New(t.Context(), s3backend.Config{
				URL:         "s3://" + srv.Bucket + "/lease?endpoint=" + srv.Endpoint,
				AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ob := outsideBubble(t, st)
			synctest.Test(t, func(t *testing.T) {
				opts := func(h lease.Holder) lease.Options { return lease.Options{Holder: h} }
				a, err := lease.Open(t.Context(), ob, lease.ModeRequired, opts(hostA))
				if err != nil {
					t.Fatalf("Open(required) on %s: %v", name, err)
				}
				synctest.Wait() // A's renewal loop waits
				time.Sleep(20 * time.Second)
				synctest.Wait() // renewed
				if r, err := ob.record(t.Context()); err != nil || r.Holder != hostA || r.Seq < 2 {
					t.Fatalf("after 20s: record %+v, %v; want A's, renewed", r, err)
				}
				if _, err := lease.Open(t.Context(), ob, lease.ModeRequired, opts(hostB)); !errors.Is(err, lease.ErrHeld) {
					t.Fatalf("second Open after A renewed: got %v, want ErrHeld", err)
				}
				if err := a.Release(t.Context()); err != nil {
					t.Fatalf("Release: %v", err)
				}
				b, err := lease.Acquire(t.Context(), ob, opts(hostB))
				if err != nil {
					t.Fatalf("Acquire after Release: %v", err)
				}
				time.Sleep(31 * time.Second) // B never renews
				c, err := lease.Acquire(t.Context(), ob, opts(holder("host-c", 3, t0)))
				if err != nil {
					t.Fatalf("takeover after expiry: %v", err)
				}
				defer c.Release(t.Context())
				if err := b.Renew(t.Context()); !errors.Is(err, lease.ErrLost) {
					t.Fatalf("old holder's Renew: got %v, want ErrLost", err)
				}
				if err := c.Check(); err != nil {
					t.Fatal(err)
				}
			})
			dbs, err := st.ListDatabases(t.Context())
			if err != nil || len(dbs) != 0 {
				t.Fatalf("ListDatabases with a lease object: %q, %v; want none", dbs, err)
			}
		})
	}
}

// offBubble runs the conditional calls of a store on a goroutine started
// outside the synctest bubble (create it there): the HTTP client's
// connections and timers then live on real time, while the lease inside the
// bubble waits for each call as for any other I/O. Contexts lose their
// cancellation so that nothing of the bubble is touched from outside it.
type offBubble struct {
	s3backend.Store // for its type and String; only the conditional calls are made
	cw              s3backend.ConditionalWriter
	mu              sync.Mutex // one call at a time
	calls           chan func()
	done            chan struct{}
}

var _ s3backend.ConditionalWriter = (*offBubble)(nil)

func outsideBubble(t testing.TB, st s3backend.Store) *offBubble {
	o := &offBubble{Store: st, cw: st.(s3backend.ConditionalWriter), calls: make(chan func()), done: make(chan struct{})}
	go func() {
		for f := range o.calls {
			f()
			o.done <- struct{}{}
		}
	}()
	t.Cleanup(func() { close(o.calls) })
	return o
}

func (o *offBubble) do(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls <- f
	<-o.done
}

func (o *offBubble) Get(ctx context.Context, key string) (body []byte, etag string, err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { body, etag, err = o.cw.Get(ctx, key) })
	return body, etag, err
}

func (o *offBubble) PutIfAbsent(ctx context.Context, key string, body []byte) (etag string, err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { etag, err = o.cw.PutIfAbsent(ctx, key, body) })
	return etag, err
}

func (o *offBubble) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (newETag string, err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { newETag, err = o.cw.PutIfMatch(ctx, key, body, etag) })
	return newETag, err
}

func (o *offBubble) DeleteKey(ctx context.Context, key string) (err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { err = o.cw.DeleteKey(ctx, key) })
	return err
}

// record reads the stored lease record.
func (o *offBubble) record(ctx context.Context) (lease.Record, error) {
	body, _, err := o.Get(ctx, lease.DefaultKey)
	if err != nil {
		return lease.Record{}, err
	}
	var r lease.Record
	err = json.Unmarshal(body, &r)
	return r, err
}
