package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// DefaultTTL is how long a lease lasts without renewal.
const DefaultTTL = 30 * time.Second

// Options configure a Lease. The zero value is usable.
type Options struct {
	// Key of the lease object under the replica root; DefaultKey when empty.
	Key string
	// TTL is how long the lease lasts without renewal; DefaultTTL when 0.
	TTL time.Duration
	// RenewEvery is the renewal period; TTL/3 when 0.
	RenewEvery time.Duration
	// Holder describes this process; CurrentHolder(now) when ID is empty.
	Holder Holder
	// Where names the replica in messages ("s3://bucket/path").
	Where string
	// Logger receives the lease's warnings and errors; discarded when nil.
	Logger *slog.Logger
	// OnLost, if set, is called once, from the goroutine that found out,
	// when the lease is lost for good. The error matches ErrLost.
	OnLost func(error)
}

func (o Options) withDefaults() (Options, error) {
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if err := s3backend.ValidateConditionalKey(o.Key); err != nil {
		return o, fmt.Errorf("lease key: %w", err)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.RenewEvery == 0 {
		o.RenewEvery = o.TTL / 3
	}
	if o.TTL < 0 || o.RenewEvery <= 0 || o.RenewEvery >= o.margin() {
		return o, fmt.Errorf("lease: renewal every %s does not fit a TTL of %s (renew at most every 5/6 of the TTL)", o.RenewEvery, o.TTL)
	}
	if o.Holder.ID == "" {
		o.Holder = CurrentHolder(time.Now())
	}
	if o.Where == "" {
		o.Where = "the replica"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// margin is how long the holder may write after sending a renewal: TTL
// minus a sixth, which absorbs clock differences between hosts and the
// time an upload started just before the fence takes to land.
func (o Options) margin() time.Duration { return o.TTL - o.TTL/6 }

// Lease is a held lease. A nil *Lease stands for "running without a
// lease": Check returns nil, Lost never fires, Release does nothing.
// Methods are safe for concurrent use.
type Lease struct {
	cw   s3backend.ConditionalWriter
	opts Options
	log  *slog.Logger

	writeMu sync.Mutex // one write of the record at a time

	mu       sync.Mutex
	rec      Record    // the version we last wrote
	etag     string    // its ETag
	deadline time.Time // no writes from here on unless renewed
	failures int       // renewals failed since the last success
	lastErr  error     // of the last failed renewal
	fenced   bool      // past the deadline (logged once)
	lostErr  error     // permanent fence, set once

	lost       context.Context // cancelled when lostErr is set
	cancelLost context.CancelCauseFunc

	loopOnce sync.Once
	stopLoop context.CancelFunc
	loopDone chan struct{}
}

// Acquire takes the lease at opts.Key in cw, or returns a *HeldError when
// a live writer holds it. It takes over a lease that expired, was released
// or whose holder is provably gone (same machine, process no longer
// running). It does not renew: call Run.
func Acquire(ctx context.Context, cw s3backend.ConditionalWriter, opts Options) (*Lease, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Lease{cw: cw, opts: opts, log: opts.Logger}
	l.lost, l.cancelLost = context.WithCancelCause(context.Background())
	// A handful of rounds: each failed round means another writer changed
	// the object between our read and our write.
	for range 5 {
		done, err := l.tryAcquire(ctx)
		if done || err != nil {
			return l.held(err)
		}
	}
	return nil, fmt.Errorf("acquire lease %s in %s: the lease object kept changing under us; another walfs is starting on this replica path", opts.Key, opts.Where)
}

func (l *Lease) held(err error) (*Lease, error) {
	if err != nil {
		l.cancelLost(err)
		return nil, err
	}
	return l, nil
}

// tryAcquire makes one read-decide-write round. done with a nil error
// means the lease is ours.
func (l *Lease) tryAcquire(ctx context.Context) (done bool, err error) {
	key := l.opts.Key
	body, etag, err := l.cw.Get(ctx, key)
	now := time.Now()
	rec := Record{Version: recordVersion, Holder: l.opts.Holder, TTLMs: l.opts.TTL.Milliseconds(), Seq: 1, Renewed: now, Expires: now.Add(l.opts.TTL)}
	if errors.Is(err, s3backend.ErrNotFound) {
		newETag, err := l.cw.PutIfAbsent(ctx, key, rec.marshal())
		if errors.Is(err, s3backend.ErrPreconditionFailed) {
			return false, nil // created meanwhile (perhaps by our own retried request): read again
		} else if err != nil {
			return false, fmt.Errorf("create lease %s in %s: %w", key, l.opts.Where, err)
		}
		l.took(rec, newETag, now)
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("read lease %s in %s: %w", key, l.opts.Where, err)
	}
	cur, perr := parseRecord(body)
	if perr != nil {
		return false, fmt.Errorf("%w: %s in %s: %v (if no walfs uses this replica path, delete the object)", ErrUnreadable, key, l.opts.Where, perr)
	}
	if cur.Holder.ID == l.opts.Holder.ID {
		// Our own create or takeover landed although its answer was lost;
		// it was sent at cur.Renewed.
		l.took(cur, etag, cur.Renewed)
		return true, nil
	}
	var why string
	switch {
	case cur.Released:
		why = "released"
	case !now.Before(cur.Expires):
		why = "expired at " + cur.Expires.UTC().Format(time.RFC3339)
	case holderGone(cur.Holder):
		why = "its process is gone"
	default:
		return false, &HeldError{Where: l.opts.Where, Key: key, Holder: cur.Holder, Expires: cur.Expires, Now: now}
	}
	rec.Seq = cur.Seq + 1
	newETag, err := l.cw.PutIfMatch(ctx, key, rec.marshal(), etag)
	if errors.Is(err, s3backend.ErrPreconditionFailed) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("take over lease %s in %s: %w", key, l.opts.Where, err)
	}
	l.log.Info("took over the replica lease", "previous_holder", cur.Holder.String(), "because", why, "lease", key)
	l.took(rec, newETag, now)
	return true, nil
}

// took records a successful write of rec sent at sent.
func (l *Lease) took(rec Record, etag string, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec, l.etag = rec, etag
	l.deadline = sent.Add(l.opts.margin())
}

// Holder returns who holds the lease (this process).
func (l *Lease) Holder() Holder { return l.opts.Holder }

// Key returns the lease object's key.
func (l *Lease) Key() string { return l.opts.Key }

// Expires returns the expiry written in the current record.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.Expires
}

// Check returns nil while this writer may write to the replica, and an
// error matching ErrFenced (a *FenceError) when it may not: the lease
// expired before a renewal succeeded, or was lost or released. Call it
// before every upload and delete (Fence does). It makes no request.
func (l *Lease) Check() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr != nil {
		return l.lostErr
	}
	now := time.Now()
	if now.Before(l.deadline) {
		return nil
	}
	err := &FenceError{
		Reason: fmt.Sprintf("lease on %s not renewed in time (fenced since %s, %d renewals failed)", l.opts.Where, l.deadline.UTC().Format(time.RFC3339), l.failures),
		Err:    l.lastErr,
	}
	if !l.fenced {
		l.fenced = true
		l.log.Error("replica lease expired before it could be renewed: uploads stop until a renewal succeeds (the spool keeps every commit)", "err", err)
	}
	return err
}

// Lost is closed when the lease is lost for good (or released). Nil for a
// nil Lease: it never fires.
func (l *Lease) Lost() <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.lost.Done()
}

// Err returns the permanent fence error once Lost has fired, else nil.
func (l *Lease) Err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

// lose fences the lease for good, says so, and tells OnLost. Only the first
// call counts.
func (l *Lease) lose(err *FenceError, notify bool) {
	err.Permanent = true
	l.mu.Lock()
	if l.lostErr != nil {
		l.mu.Unlock()
		return
	}
	l.lostErr = err
	l.mu.Unlock()
	l.cancelLost(err)
	if !notify {
		return
	}
	l.log.Error("replica lease lost: uploads stop now; commits stay in the local spool (stop this walfs, and check who else writes to this replica path)", "err", err)
	if l.opts.OnLost != nil {
		l.opts.OnLost(err)
	}
}

// Renew extends the lease by one TTL with If-Match. It fails with an error
// matching ErrLost when another writer took the lease; other errors (the
// store is unreachable) leave the lease as it is, to be renewed later.
func (l *Lease) Renew(ctx context.Context) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	rec, etag := l.rec, l.etag
	l.mu.Unlock()
	now := time.Now()
	rec.Seq++
	rec.Renewed, rec.Expires = now, now.Add(l.opts.TTL)
	rec, newETag, err := l.write(ctx, rec, etag)
	if err != nil {
		var fe *FenceError
		if errors.As(err, &fe) {
			l.lose(fe, true)
			return err
		}
		l.mu.Lock()
		l.failures++
		l.lastErr = err
		l.mu.Unlock()
		return fmt.Errorf("renew lease %s in %s: %w", l.opts.Key, l.opts.Where, err)
	}
	l.mu.Lock()
	resumed := l.fenced
	l.rec, l.etag = rec, newETag
	l.deadline = now.Add(l.opts.margin())
	l.failures, l.lastErr, l.fenced = 0, nil, false
	l.mu.Unlock()
	if resumed {
		l.log.Warn("replica lease renewed after it had expired; nobody took it over meanwhile, so uploads resume", "lease", l.opts.Key)
	}
	return nil
}

// write puts rec over the version etag names and returns what it wrote.
// When the condition fails it reads the object back to tell "our own write
// landed but its answer was lost" (success) from "someone else wrote it"
// (a *FenceError).
func (l *Lease) write(ctx context.Context, rec Record, etag string) (Record, string, error) {
	body := rec.marshal()
	newETag, err := l.cw.PutIfMatch(ctx, l.opts.Key, body, etag)
	if !errors.Is(err, s3backend.ErrPreconditionFailed) {
		return rec, newETag, err
	}
	got, curETag, gerr := l.cw.Get(ctx, l.opts.Key)
	switch {
	case errors.Is(gerr, s3backend.ErrNotFound):
		return rec, "", &FenceError{Reason: fmt.Sprintf("the lease object %s in %s was deleted", l.opts.Key, l.opts.Where)}
	case gerr != nil:
		return rec, "", errors.Join(err, gerr) // cannot tell yet; try again later
	case bytes.Equal(got, body):
		return rec, curETag, nil
	}
	cur, perr := parseRecord(got)
	switch {
	case perr != nil:
		return rec, "", &FenceError{Reason: fmt.Sprintf("the lease object %s in %s was overwritten with something unreadable", l.opts.Key, l.opts.Where), Err: perr}
	case cur.Holder.ID != l.opts.Holder.ID && cur.Released:
		return rec, "", &FenceError{Reason: fmt.Sprintf("the lease on %s was released by %s", l.opts.Where, cur.Holder), By: &cur.Holder}
	case cur.Holder.ID != l.opts.Holder.ID:
		return rec, "", &FenceError{Reason: fmt.Sprintf("the lease on %s was taken over by %s", l.opts.Where, cur.Holder), By: &cur.Holder}
	}
	// An earlier write of ours landed after we gave up on it (its answer
	// was lost): continue from that version.
	rec.Seq = max(rec.Seq, cur.Seq+1)
	newETag, err = l.cw.PutIfMatch(ctx, l.opts.Key, rec.marshal(), curETag)
	return rec, newETag, err
}

// Run renews the lease in the background every RenewEvery, and more often
// (every RenewEvery/4) while renewals fail, until Release or until the
// lease is lost. Calling it again does nothing.
func (l *Lease) Run() {
	if l == nil {
		return
	}
	l.loopOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		l.stopLoop = cancel
		l.loopDone = make(chan struct{})
		go l.loop(ctx)
	})
}

func (l *Lease) loop(ctx context.Context) {
	defer close(l.loopDone)
	wait := l.opts.RenewEvery
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.lost.Done():
			return
		case <-time.After(wait):
		}
		// A renewal that hangs must not outlive the lease.
		rctx, cancel := context.WithTimeout(ctx, l.opts.RenewEvery)
		err := l.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			wait = l.opts.RenewEvery
		case errors.Is(err, ErrLost):
			return
		case ctx.Err() != nil:
			return
		default:
			wait = l.opts.RenewEvery / 4
			l.log.Warn("cannot renew the replica lease; retrying", "retry_in", wait, "fenced_at", l.deadlineCopy().UTC().Format(time.RFC3339), "err", err)
			_ = l.Check() // logs once when the lease has run out
		}
	}
}

func (l *Lease) deadlineCopy() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Release stops renewing and marks the lease released (with If-Match), so
// the next walfs on this replica path starts at once instead of waiting for
// the TTL. Call it last at clean shutdown, after the final upload: from
// then on Check fails. A lease already lost is not released (it is not
// ours). If the write fails the lease simply expires after its TTL.
func (l *Lease) Release(ctx context.Context) error {
	if l == nil {
		return nil
	}
	// After this Do, Run can no longer start a loop, and stopLoop is set
	// if it did.
	l.loopOnce.Do(func() {})
	if l.stopLoop != nil {
		l.stopLoop()
		<-l.loopDone
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.Err(); err != nil {
		return nil
	}
	l.mu.Lock()
	rec, etag := l.rec, l.etag
	l.mu.Unlock()
	expires := rec.Expires
	now := time.Now()
	rec.Seq++
	rec.Renewed, rec.Expires, rec.Released = now, now, true
	_, _, err := l.write(ctx, rec, etag)
	var fe *FenceError
	if errors.As(err, &fe) {
		l.lose(fe, true)
		return nil
	}
	l.lose(&FenceError{Reason: "the lease on " + l.opts.Where + " was released"}, false)
	if err != nil {
		return fmt.Errorf("release lease %s in %s (it expires by itself at %s): %w", l.opts.Key, l.opts.Where, expires.UTC().Format(time.RFC3339), err)
	}
	return nil
}
