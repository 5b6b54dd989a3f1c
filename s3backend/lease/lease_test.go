package lease_test

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

var (
	// t0 is when the pretend holders started: an hour before the clock of a
	// synctest bubble starts.
	t0    = time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC)
	hostA = holder("host-a", 1111, t0)
	hostB = holder("host-b", 2222, t0)
)

func TestAcquireCreatesRecord(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		l := e.acquire(t, hostA)
		r := e.record(t)
		if r.Holder != hostA || r.Seq != 1 || r.Released {
			t.Fatalf("record = %+v, want holder %v, seq 1, not released", r, hostA)
		}
		if want := time.Now().Add(lease.DefaultTTL); !r.Expires.Equal(want) || !l.Expires().Equal(want) {
			t.Fatalf("expires: record %v, lease %v, want %v", r.Expires, l.Expires(), want)
		}
		if r.TTLMs != lease.DefaultTTL.Milliseconds() {
			t.Fatalf("ttl_ms = %d, want %d", r.TTLMs, lease.DefaultTTL.Milliseconds())
		}
		if err := l.Check(); err != nil {
			t.Fatalf("Check right after Acquire: %v", err)
		}
		dbs, err := e.store.ListDatabases(t.Context())
		if err != nil || len(dbs) != 0 {
			t.Fatalf("ListDatabases with only the lease object: %q, %v; want none", dbs, err)
		}
	})
}

func TestSecondHolderRefused(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		e.acquire(t, hostA)
		time.Sleep(7 * time.Second)
		_, err := lease.Acquire(t.Context(), e.cw, e.opts(hostB))
		var held *lease.HeldError
		if !errors.As(err, &held) || !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("second Acquire: got %v, want a *HeldError", err)
		}
		if held.Holder != hostA {
			t.Fatalf("HeldError names %v, want %v", held.Holder, hostA)
		}
		msg := err.Error()
		for _, want := range []string{"file:///replica", "walfs pid 1111 on host host-a", "started 1999-12-31T23:00:00Z", "expires at 2000-01-01T00:00:30Z", "(in 23s)"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("refusal is not one line: %q", msg)
		}
		if r := e.record(t); r.Holder != hostA || r.Seq != 1 {
			t.Fatalf("the refused Acquire changed the record: %+v", r)
		}
	})
}

func TestRenewExtendsAndFencesAtDeadline(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		l := e.acquire(t, hostA)
		time.Sleep(10 * time.Second)
		if err := l.Renew(t.Context()); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		r := e.record(t)
		if want := time.Now().Add(lease.DefaultTTL); r.Seq != 2 || !r.Expires.Equal(want) {
			t.Fatalf("after Renew: seq %d expires %v, want seq 2 expires %v", r.Seq, r.Expires, want)
		}
		// The holder fences itself TTL/6 before the expiry others see.
		time.Sleep(25*time.Second - time.Millisecond)
		if err := l.Check(); err != nil {
			t.Fatalf("Check just before the fence: %v", err)
		}
		time.Sleep(time.Millisecond)
		err := l.Check()
		if !errors.Is(err, lease.ErrFenced) || errors.Is(err, lease.ErrLost) {
			t.Fatalf("Check at the fence: got %v, want ErrFenced, not ErrLost", err)
		}
		if !strings.Contains(e.logs.String(), "expired before it could be renewed") {
			t.Errorf("fencing was not logged:\n%s", e.logs)
		}
	})
}

func TestExpiredLeaseTakenOverAndOldHolderFenced(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		var lostErr []error
		optsA := e.opts(hostA)
		optsA.OnLost = func(err error) { lostErr = append(lostErr, err) }
		a, err := lease.Acquire(t.Context(), e.cw, optsA)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(29 * time.Second)
		if _, err := lease.Acquire(t.Context(), e.cw, e.opts(hostB)); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("Acquire before expiry: got %v, want ErrHeld", err)
		}
		time.Sleep(time.Second) // A never renewed: its lease expires now
		b := e.acquire(t, hostB)
		if r := e.record(t); r.Holder != hostB || r.Seq != 2 {
			t.Fatalf("after takeover: %+v, want B's record with seq 2", r)
		}
		if !strings.Contains(e.logs.String(), "took over the replica lease") {
			t.Errorf("takeover not logged:\n%s", e.logs)
		}
		if err := a.Check(); !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("A.Check after expiry: got %v, want ErrFenced", err)
		}
		// A tries to renew, finds B, and stops for good.
		err = a.Renew(t.Context())
		var fe *lease.FenceError
		if !errors.Is(err, lease.ErrLost) || !errors.As(err, &fe) || fe.By == nil || *fe.By != hostB {
			t.Fatalf("A.Renew after takeover: got %v, want ErrLost naming B", err)
		}
		if !strings.Contains(err.Error(), "taken over by walfs pid 2222 on host host-b") {
			t.Errorf("loss message %q does not name B", err)
		}
		select {
		case <-a.Lost():
		default:
			t.Fatal("A.Lost() not closed")
		}
		if len(lostErr) != 1 || !errors.Is(lostErr[0], lease.ErrLost) {
			t.Fatalf("OnLost calls: %v, want one with ErrLost", lostErr)
		}
		if err := a.Check(); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("A.Check after loss: got %v, want ErrLost", err)
		}
		if err := a.Renew(t.Context()); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("A.Renew again: got %v, want ErrLost", err)
		}
		if len(lostErr) != 1 {
			t.Fatalf("OnLost called %d times, want once", len(lostErr))
		}
		if err := b.Check(); err != nil {
			t.Fatalf("B.Check: %v", err)
		}
		if r := e.record(t); r.Holder != hostB {
			t.Fatalf("A's attempts changed B's record: %+v", r)
		}
		if !strings.Contains(e.logs.String(), "replica lease lost: uploads stop now") {
			t.Errorf("loss not logged:\n%s", e.logs)
		}
	})
}

// An outage longer than the TTL fences the holder; when the store returns,
// a renewal with If-Match proves nobody took over and uploads resume.
func TestFencedDuringOutageResumesAfter(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		l := e.acquire(t, hostA)
		e.cw.setDown(true)
		for range 4 {
			time.Sleep(10 * time.Second)
			err := l.Renew(t.Context())
			if !errors.Is(err, errDown) || errors.Is(err, lease.ErrLost) {
				t.Fatalf("Renew during outage: got %v, want the store error, not ErrLost", err)
			}
		}
		if err := l.Check(); !errors.Is(err, lease.ErrFenced) || !errors.Is(err, errDown) || !strings.Contains(err.Error(), "4 renewals failed") {
			t.Fatalf("Check after a 40s outage: got %v, want ErrFenced with the store error and the failure count", err)
		}
		e.cw.setDown(false)
		if err := l.Renew(t.Context()); err != nil {
			t.Fatalf("Renew after the outage: %v", err)
		}
		if err := l.Check(); err != nil {
			t.Fatalf("Check after a successful renewal: %v", err)
		}
		if !strings.Contains(e.logs.String(), "uploads resume") {
			t.Errorf("resumption not logged:\n%s", e.logs)
		}
	})
}

// A write that landed although its answer was lost is recognised as ours.
func TestLostAnswers(t *testing.T) {
	t.Run("acquire", func(t *testing.T) {
		e := newEnv(t)
		e.cw.setLoseNext("412") // as when the SDK retries a PutIfAbsent that had landed
		l := e.acquire(t, hostA)
		if err := l.Check(); err != nil {
			t.Fatal(err)
		}
		if r := e.record(t); r.Holder != hostA {
			t.Fatalf("record %+v, want A's", r)
		}
	})
	t.Run("renew", func(t *testing.T) {
		inBubble(t, func(t *testing.T, e *env) {
			l := e.acquire(t, hostA)
			time.Sleep(10 * time.Second)
			e.cw.setLoseNext("error")
			if err := l.Renew(t.Context()); !errors.Is(err, errDown) {
				t.Fatalf("Renew with a lost answer: got %v, want errDown", err)
			}
			time.Sleep(5 * time.Second)
			// The lease now holds a version with an ETag A never saw.
			if err := l.Renew(t.Context()); err != nil {
				t.Fatalf("next Renew: %v", err)
			}
			if r := e.record(t); r.Holder != hostA || r.Seq != 3 {
				t.Fatalf("record %+v, want A's with seq 3", r)
			}
			time.Sleep(5 * time.Second)
			if err := l.Renew(t.Context()); err != nil {
				t.Fatalf("Renew after recovering: %v", err)
			}
		})
	})
}

func TestReleaseLetsNextHolderStartAtOnce(t *testing.T) {
	e := newEnv(t)
	a := e.acquire(t, hostA)
	if err := a.Release(t.Context()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if r := e.record(t); !r.Released || r.Holder != hostA {
		t.Fatalf("after Release: %+v, want A's record marked released", r)
	}
	if err := a.Check(); !errors.Is(err, lease.ErrFenced) {
		t.Fatalf("Check after Release: got %v, want ErrFenced", err)
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	b := e.acquire(t, hostB) // no clock advance
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.logs.String(), "replica lease lost") {
		t.Errorf("a release was logged as a loss:\n%s", e.logs)
	}
}

func TestReleaseAfterTakeoverLeavesNewHolderAlone(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		a := e.acquire(t, hostA)
		time.Sleep(31 * time.Second)
		e.acquire(t, hostB)
		if err := a.Release(t.Context()); err != nil {
			t.Fatalf("Release of a lease taken over: %v", err)
		}
		if r := e.record(t); r.Holder != hostB || r.Released {
			t.Fatalf("A's Release touched B's lease: %+v", r)
		}
	})
}

// On the same machine, a holder whose process is gone is replaced at once
// (a supervisor restarting walfs after kill -9 must not wait for the TTL),
// while a running one is not.
func TestHolderGoneOnThisMachine(t *testing.T) {
	here := lease.CurrentHolder(t0)
	if here.BootID == "" || here.PIDNamespace == "" {
		if runtime.GOOS == "linux" {
			t.Fatalf("no boot id or pid namespace on Linux (is /proc mounted?): holders are never proven gone: %+v", here)
		}
		t.Skip("no boot id or pid namespace on this platform: holders are never proven gone")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := here
	dead.ID, dead.PID = "dead", cmd.Process.Pid
	e := newEnv(t)
	e.acquire(t, dead)
	e.acquire(t, here)
	if !strings.Contains(e.logs.String(), "its process is gone") {
		t.Errorf("takeover reason not logged:\n%s", e.logs)
	}

	e = newEnv(t)
	alive := here
	alive.ID, alive.PID = "alive", cmd.Process.Pid
	cmd = exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	alive.PID = cmd.Process.Pid
	e.acquire(t, alive)
	if _, err := lease.Acquire(t.Context(), e.cw, e.opts(here)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire while the holder runs: got %v, want ErrHeld", err)
	}
	// Another machine's pid says nothing about processes here.
	e = newEnv(t)
	other := dead
	other.BootID = "another-machine"
	e.acquire(t, other)
	if _, err := lease.Acquire(t.Context(), e.cw, e.opts(here)); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire over another machine's holder: got %v, want ErrHeld", err)
	}
}

func TestUnreadableLeaseIsNotTakenOver(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.PutIfAbsent(t.Context(), lease.DefaultKey, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	_, err := lease.Acquire(t.Context(), e.cw, e.opts(hostA))
	if !errors.Is(err, lease.ErrUnreadable) || !strings.Contains(err.Error(), "delete") {
		t.Fatalf("Acquire over garbage: got %v, want ErrUnreadable with a hint", err)
	}
}

func TestConcurrentAcquireOneWinner(t *testing.T) {
	e := newEnv(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = lease.Acquire(t.Context(), e.store, e.opts(holder("host-"+string(rune('a'+i)), 100+i, t0)))
		})
	}
	wg.Wait()
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, lease.ErrHeld):
			t.Errorf("contender %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d contenders acquired the lease, want exactly 1", winners)
	}
}

// The background loop renews every TTL/3 and, once another holder shows
// up, stops, closes Lost and calls OnLost.
func TestRunLoop(t *testing.T) {
	inBubble(t, func(t *testing.T, e *env) {
		lost := make(chan error, 1)
		o := e.opts(hostA)
		o.OnLost = func(err error) { lost <- err }
		l, err := lease.Acquire(t.Context(), e.cw, o)
		if err != nil {
			t.Fatal(err)
		}
		l.Run()
		synctest.Wait()
		for seq := uint64(2); seq <= 4; seq++ {
			time.Sleep(10 * time.Second)
			synctest.Wait() // the loop renewed and waits again
			if r := e.record(t); r.Seq != seq || !r.Expires.Equal(time.Now().Add(lease.DefaultTTL)) {
				t.Fatalf("after %d renewals: %+v", seq-1, r)
			}
			if err := l.Check(); err != nil {
				t.Fatal(err)
			}
		}
		// An outage: the loop retries every TTL/12 and the lease runs out.
		e.cw.setDown(true)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for range 10 {
			time.Sleep(2500 * time.Millisecond)
			synctest.Wait()
		}
		if err := l.Check(); !errors.Is(err, lease.ErrFenced) || errors.Is(err, lease.ErrLost) {
			t.Fatalf("Check after a 35s outage: got %v, want ErrFenced", err)
		}
		if !strings.Contains(e.logs.String(), "cannot renew the replica lease; retrying") {
			t.Errorf("failed renewals not logged:\n%s", e.logs)
		}
		// The store comes back, but B took the lease meanwhile.
		e.cw.setDown(false)
		e.acquire(t, hostB)
		time.Sleep(2500 * time.Millisecond)
		select {
		case err := <-lost:
			if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "host-b") {
				t.Fatalf("OnLost got %v, want ErrLost naming host-b", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("OnLost not called after the takeover")
		}
		<-l.Lost()
		if err := l.Release(t.Context()); err != nil { // waits for the loop to end
			t.Fatalf("Release after loss: %v", err)
		}
		if r := e.record(t); r.Holder != hostB || r.Released {
			t.Fatalf("B's record was touched: %+v", r)
		}
	})
}

func TestNilLease(t *testing.T) {
	var l *lease.Lease
	if l.Check() != nil || l.Err() != nil || l.Lost() != nil || l.Release(t.Context()) != nil {
		t.Fatal("a nil Lease must behave as no lease")
	}
	l.Run()
	st := s3backend.NewFileStore(t.TempDir())
	if got := lease.Fence(st, nil); got != st {
		t.Fatalf("Fence(store, nil) = %v, want the store itself", got)
	}
}

func TestOptionsValidated(t *testing.T) {
	e := newEnv(t)
	for _, o := range []lease.Options{
		{Key: "app.db/0000/0000000000000001-0000000000000001.ltx"},
		{Key: "../lease.json"},
		{TTL: 30 * time.Second, RenewEvery: 25 * time.Second},
		{TTL: -time.Second},
	} {
		if _, err := lease.Acquire(t.Context(), e.cw, o); err == nil {
			t.Errorf("Acquire with %+v succeeded, want an error", o)
		}
	}
}
