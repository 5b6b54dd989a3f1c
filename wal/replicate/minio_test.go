package replicate

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/wal/restore"
)

// Against a real MinIO, on the injected clock: ten simulated minutes of one
// upload per second, then an idle minute and an idle hour with the real
// maintenance loop. Under load, maintenance adds only its compaction PUTs
// (inputs come from the write cache); idle, nothing at all. The replica then
// restores to the model's pages. (The real-time idle minute with the real
// binary is integration.TestIdleMountSendsNoRequests.)
func TestMaintenanceMinIO(t *testing.T) {
	srv := testserver.StartMinIO(t)
	st, err := s3backend.New(t.Context(), s3backend.Config{
		URL:         "s3://" + srv.Bucket + "/maint?endpoint=" + srv.Endpoint,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, CAFile: srv.CAFile,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No size-triggered snapshots: this small database would take one every
	// couple of minutes and blur the counts.
	g := newRig(t, st, MaintenanceOptions{SnapshotFactor: -1})
	m := newModel(t, "app.db", 30, 10)
	m.snapshot(g.store(), g.now())
	before := g.calls()
	for range 600 {
		m.batch(g.store(), g.now(), 1)
		g.advance(time.Second)
	}
	g.requireNoErrors()
	load := diff(g.calls(), before)
	t.Logf("10 minutes at one upload per second: %v", load)
	if got, want := load[instrument.OpPut], uint64(600+20+2); got != want {
		t.Errorf("PUTs: got %d, want %d (600 uploads, 20 level-1 and 2 level-2 compactions)", got, want)
	}
	if len(load) != 1 {
		t.Errorf("requests under load: %v, want PUTs only", load)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); g.dm.run(ctx) }()
	defer func() { cancel(); <-done }()
	g.clk.waitWaiters(t, 1)
	g.clk.advance(t, time.Hour, 1) // settle: levels 1..3 catch up
	idle := g.calls()
	g.clk.advance(t, time.Minute, 1)
	if d := diff(g.calls(), idle); len(d) > 0 {
		t.Fatalf("idle minute: %v requests, want none", d)
	}
	g.clk.advance(t, time.Hour, 1)
	if d := diff(g.calls(), idle); len(d) > 0 {
		t.Fatalf("idle hour: %v requests, want none", d)
	}
	got, _ := restoreAt(t, g.store(), restore.Target{})
	if !bytes.Equal(got, m.image()) {
		t.Fatal("restored latest differs from the model")
	}
}
