package replicate

import (
	"log/slog"
	"os"
	"testing"
	"testing/synctest"
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
// database ("app.db") seeded and, once start is called, run by the real
// loop (dbMaint.step on the Replicator's maintenance scheduler). Use it inside a synctest bubble: advance sleeps on the
// bubble's fake clock, so the loop runs its jobs at the moments its schedule
// says, and returns once the loop waits again. Writes go through
// r.opts.Store, the index wrapper, as the uploader's do.
type rig struct {
	t     testing.TB
	r     *Replicator
	dm    *dbMaint
	count *instrument.Counter // counts every call that reaches the inner store
	loop  bool                // start was called
}

func newRig(t testing.TB, inner s3backend.Store, opts MaintenanceOptions) *rig {
	count := instrument.NewCounter()
	r, err := New(Options{DataDir: t.TempDir(), Store: instrument.Wrap(inner, count), Maintenance: opts, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	g := &rig{t: t, r: r, count: count}
	g.dm = r.maint.add("app.db", 0, nil)
	if err := g.dm.seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	return g
}

// start runs the maintenance loop until the test ends, and returns once it
// waits for its first job.
func (g *rig) start() {
	g.dm.task = g.r.maintSched.newTask(g.dm.step)
	g.r.maintSched.wake(g.dm.task)
	g.loop = true
	synctest.Wait()
}

func (g *rig) store() s3backend.Store { return g.r.opts.Store }

func (g *rig) now() time.Time { return time.Now() }

// advance lets d pass on the bubble's clock, the loop running every job
// that comes due, and returns once the loop waits again.
func (g *rig) advance(d time.Duration) {
	g.t.Helper()
	if !g.loop {
		g.t.Fatal("rig.advance before rig.start: no loop would run the jobs")
	}
	time.Sleep(d)
	synctest.Wait()
}

// errs returns the maintenance errors so far.
func (g *rig) errs() map[string]uint64 { return g.dm.status().errs }

func (g *rig) requireNoErrors() {
	g.t.Helper()
	if st := g.dm.status(); len(st.errs) > 0 {
		g.t.Fatalf("maintenance errors %v; last: %v", st.errs, st.lastErr)
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
