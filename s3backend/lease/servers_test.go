package lease_test

import (
	"errors"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

// The lease's whole life on real servers: taken and renewed, refused to a
// second writer, released and taken at once by the next, taken over after
// expiry (injected clock) with the old holder fenced.
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
			clock := newFakeClock()
			cw := st.(s3backend.ConditionalWriter)
			opts := func(h lease.Holder) lease.Options { return lease.Options{Holder: h, Clock: clock} }
			a, err := lease.Open(t.Context(), st, lease.ModeRequired, opts(hostA))
			if err != nil {
				t.Fatalf("Open(required) on %s: %v", name, err)
			}
			clock.waitAfter(t)
			clock.Advance(20 * time.Second)
			clock.waitAfter(t) // renewed
			if _, err := lease.Open(t.Context(), st, lease.ModeRequired, opts(hostB)); !errors.Is(err, lease.ErrHeld) {
				t.Fatalf("second Open after A renewed: got %v, want ErrHeld", err)
			}
			if err := a.Release(t.Context()); err != nil {
				t.Fatalf("Release: %v", err)
			}
			b, err := lease.Acquire(t.Context(), cw, opts(hostB))
			if err != nil {
				t.Fatalf("Acquire after Release: %v", err)
			}
			clock.Advance(31 * time.Second) // B never renews
			c, err := lease.Acquire(t.Context(), cw, opts(holder("host-c", 3, t0)))
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
			dbs, err := st.ListDatabases(t.Context())
			if err != nil || len(dbs) != 0 {
				t.Fatalf("ListDatabases with a lease object: %q, %v; want none", dbs, err)
			}
		})
	}
}
