package replicate

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/wal/restore"
)

// Against a real MinIO, in a synctest bubble: ten simulated minutes of one
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
	st = outsideBubble(t, st)
	synctest.Test(t, func(t *testing.T) {
		// No size-triggered snapshots: this small database would take one every
		// couple of minutes and blur the counts.
		g := newRig(t, st, MaintenanceOptions{SnapshotFactor: -1})
		g.start()
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

		g.advance(time.Hour) // settle: levels 1..3 catch up
		idle := g.calls()
		g.advance(time.Minute)
		if d := diff(g.calls(), idle); len(d) > 0 {
			t.Fatalf("idle minute: %v requests, want none", d)
		}
		g.advance(time.Hour)
		if d := diff(g.calls(), idle); len(d) > 0 {
			t.Fatalf("idle hour: %v requests, want none", d)
		}
		got, _ := restoreAt(t, g.store(), restore.Target{})
		if !bytes.Equal(got, m.image()) {
			t.Fatal("restored latest differs from the model")
		}
	})
}

// outsideBubble runs every call of st on a goroutine started outside the
// synctest bubble (call it there): the HTTP client's connections, timers and
// request signing then live on real time, while the caller inside the bubble
// waits for each call as for any other I/O. Contexts lose their
// cancellation and readers are copied, so that nothing of the bubble is
// touched from outside it.
func outsideBubble(t testing.TB, st s3backend.Store) s3backend.Store {
	o := &offBubble{st: st, calls: make(chan func()), done: make(chan struct{})}
	go func() {
		for f := range o.calls {
			f()
			o.done <- struct{}{}
		}
	}()
	t.Cleanup(func() { close(o.calls) })
	return o
}

type offBubble struct {
	st    s3backend.Store
	mu    sync.Mutex // one call at a time
	calls chan func()
	done  chan struct{}
}

var _ s3backend.Store = (*offBubble)(nil)

func (o *offBubble) do(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls <- f
	<-o.done
}

func (o *offBubble) Init(ctx context.Context) (err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { err = o.st.Init(ctx) })
	return err
}

func (o *offBubble) ListDatabases(ctx context.Context) (dbs []string, err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { dbs, err = o.st.ListDatabases(ctx) })
	return dbs, err
}

func (o *offBubble) List(ctx context.Context, db string, level int) (files []s3backend.FileInfo, err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { files, err = o.st.List(ctx, db, level) })
	return files, err
}

func (o *offBubble) Open(ctx context.Context, info s3backend.FileInfo, off int64) (io.ReadCloser, error) {
	ctx = context.WithoutCancel(ctx)
	var b []byte
	var err error
	o.do(func() {
		var rc io.ReadCloser
		if rc, err = o.st.Open(ctx, info, off); err != nil {
			return
		}
		defer rc.Close()
		b, err = io.ReadAll(rc)
	})
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (o *offBubble) Write(ctx context.Context, info s3backend.FileInfo, r io.Reader, size int64) (got s3backend.FileInfo, err error) {
	b, err := io.ReadAll(r) // read here: r may be of the bubble
	if err != nil {
		return s3backend.FileInfo{}, err
	}
	ctx = context.WithoutCancel(ctx)
	o.do(func() { got, err = o.st.Write(ctx, info, bytes.NewReader(b), size) })
	return got, err
}

func (o *offBubble) Delete(ctx context.Context, infos []s3backend.FileInfo) (err error) {
	ctx = context.WithoutCancel(ctx)
	o.do(func() { err = o.st.Delete(ctx, infos) })
	return err
}

func (o *offBubble) String() string { return o.st.String() }
