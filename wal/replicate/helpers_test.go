package replicate

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("WALFS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// rig is a Replicator that is never started, with the maintenance of one
// database ("app.db") driven synchronously by a fake clock. Writes go
// through r.opts.Store, the index wrapper, as the uploader's do.
type rig struct {
	t     testing.TB
	r     *Replicator
	dm    *dbMaint
	clk   *fakeClock
	count *instrument.Counter // counts every call that reaches the inner store
	jobs  []job
}

func newRig(t testing.TB, inner s3backend.Store, opts MaintenanceOptions) *rig {
	clk := newFakeClock(t0)
	count := instrument.NewCounterAt(clk.Now)
	opts.Clock = clk
	r, err := New(Options{DataDir: t.TempDir(), Store: instrument.Wrap(inner, count), Maintenance: opts, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	g := &rig{t: t, r: r, clk: clk, count: count}
	g.dm = r.maint.add("app.db", nil)
	if err := g.dm.seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.jobs = g.dm.jobs()
	for i := range g.jobs {
		g.jobs[i].next = clk.Now().Add(g.jobs[i].every)
	}
	return g
}

func (g *rig) store() s3backend.Store { return g.r.opts.Store }

func (g *rig) now() time.Time { return g.clk.Now() }

// advance moves time forward by d, running the jobs at the moments their
// schedule says, exactly as dbMaint.run would.
func (g *rig) advance(d time.Duration) {
	target := g.clk.Now().Add(d)
	for {
		next := g.jobs[0].next
		for _, j := range g.jobs[1:] {
			if j.next.Before(next) {
				next = j.next
			}
		}
		if next.After(target) {
			break
		}
		g.clk.set(next)
		g.dm.runDue(g.t.Context(), g.jobs, next)
	}
	g.clk.set(target)
}

// errs returns the maintenance errors so far.
func (g *rig) errs() map[string]uint64 {
	g.dm.mu.Lock()
	defer g.dm.mu.Unlock()
	out := map[string]uint64{}
	for k, v := range g.dm.errs {
		out[k] = v
	}
	return out
}

func (g *rig) requireNoErrors() {
	g.t.Helper()
	if e := g.errs(); len(e) > 0 {
		g.dm.mu.Lock()
		err := g.dm.lastErr
		g.dm.mu.Unlock()
		g.t.Fatalf("maintenance errors %v; last: %v", e, err)
	}
}

// calls returns the store calls by operation since start.
func (g *rig) calls() map[string]uint64 {
	out := map[string]uint64{}
	for op, c := range g.count.Ops() {
		out[op] = c.Calls
	}
	return out
}
