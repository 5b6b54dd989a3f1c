package head

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// Backoff between failed publishes: it doubles from minBackoff up to
// maxBackoff, like the uploader's.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// maxRounds bounds the read-merge-write rounds of one publish: each failed
// round means another writer changed the object between our read and our
// write.
const maxRounds = 5

// Options configure a Publisher.
type Options struct {
	// Store holds the head object (under Key).
	Store s3backend.ConditionalWriter
	// Writer names this primary in the record; DefaultWriter() when empty.
	Writer string
	// Check, if set, is called before every PUT: while it returns an error
	// (the writer lost or could not renew its lease: lease.Check) nothing is
	// published; the error is counted and the publish retried with backoff.
	Check func() error
	// Logger receives failures and recoveries; discarded when nil.
	Logger *slog.Logger
	// MinGap is the least time between the starts of two PUTs (Close's last
	// one excepted): changes made within it share the next PUT. 0: a PUT
	// starts as soon as the one before ended. With many busy databases the
	// uploads never pause, and without a gap the publisher would rewrite the
	// whole record back to back: a request and an encoding of every entry
	// each time.
	MinGap time.Duration
}

// DefaultWriter names this process: host and pid.
func DefaultWriter() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Status is what a Publisher has done since Start.
type Status struct {
	Seq          uint64    // of the record last written or read
	Publishes    uint64    // records written
	LastPublish  time.Time // when the last one was written; zero if none
	Pending      bool      // changes not yet published
	Errors       uint64    // failed publishes (each retried)
	LastErr      error     // of the last failed publish; nil once one succeeds
	FailingSince time.Time // when the current run of failures began; zero while publishes succeed
	// Stopped is set when publishing stopped for good: the store has no
	// conditional writes. Followers then find the last record (if any) and
	// list.
	Stopped error
	// Overflow is set once the head object says the replica has too many
	// databases for one record (Record.Overflow), written by this
	// publisher or found: followers list the replica, and nothing more is
	// published.
	Overflow bool
}

// Publisher keeps the head object up to date on the primary. Uploaded and
// Removed, called by the uploader, record the change and wake the
// publishing goroutine; they never wait for the store. Changes coalesce:
// at most one PUT is in flight, and any number of changes made during it
// cause exactly one more PUT after it. Create with NewPublisher, then Start
// (once); Close at shutdown. Methods are safe for concurrent use.
type Publisher struct {
	cw    s3backend.ConditionalWriter
	check func() error
	who   string
	log   *slog.Logger
	gap   time.Duration // Options.MinGap

	kick   chan struct{} // capacity 1: a pending wake-up
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when run returns
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	// mu guards everything below; never held across a request.
	mu      sync.Mutex
	started bool
	local   map[string]*DB // databases changed since Start; nil: removed. An entry is replaced, never changed
	gen     uint64         // bumped on every change of local
	pubGen  uint64         // gen of the last record written
	seeded  bool           // base and etag reflect a read or write of the object
	base    Record         // what the store holds, as far as we know; replaced, never changed
	etag    string         // base's ETag; "" while the object is absent
	st      Status
}

// NewPublisher returns a Publisher that has published nothing yet.
func NewPublisher(opts Options) *Publisher {
	if opts.Writer == "" {
		opts.Writer = DefaultWriter()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		cw: opts.Store, check: opts.Check, who: opts.Writer, log: log.With("component", "head"), gap: opts.MinGap,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		local: map[string]*DB{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Start reads the head object an earlier primary left, so that the entries
// of databases this one has not uploaded since are kept, and starts
// publishing. A failed read is recorded in Status and logged; the first
// publish reads again.
func (p *Publisher) Start(ctx context.Context) {
	if err := p.reload(ctx); err != nil {
		p.failed(err)
		p.log.Warn("cannot read the head record; reading it again before the first publish", "err", err)
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	go p.run()
}

// Uploaded records that the uploader put info in the store, which brought
// db to txid with the database checksum sum, committed at commit. It never
// waits.
func (p *Publisher) Uploaded(db string, info s3backend.FileInfo, txid uint64, sum ltx.Checksum, commit time.Time) {
	p.mu.Lock()
	cur, touched := p.local[db]
	var e DB
	switch {
	case cur != nil:
		e = *cur
	case !touched:
		e = p.base.DBs[db] // an earlier run's entry, when this one uploads first
	}
	e = e.add(fileOf(info), txid, sum, commit, MaxFiles)
	p.local[db] = &e
	p.gen++
	p.mu.Unlock()
	p.wake()
}

// Removed records that db was deleted: its entry becomes a tombstone
// (Deleted, at the TXID it had), so followers remove their copy and do not
// restore it again from the objects that stay. It never waits.
func (p *Publisher) Removed(db string) {
	p.mu.Lock()
	last, touched := p.local[db]
	if base, inBase := p.base.DBs[db]; !touched && inBase {
		last = &base
	}
	changed := last != nil && !last.Deleted
	if changed {
		p.local[db] = &DB{TXID: last.TXID, Checksum: last.Checksum, Commit: last.Commit, Deleted: true}
		p.gen++
	} else if last == nil {
		p.local[db] = nil
	}
	p.mu.Unlock()
	if changed {
		p.wake()
	}
}

func (p *Publisher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Status returns what the Publisher has done. It never waits for the store.
func (p *Publisher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	st.Pending = p.pending()
	return st
}

// Close stops publishing after one last attempt to publish what changed
// since the last PUT, within ctx. It returns the error of that attempt
// (nil when nothing was left, or publishing had stopped for good, which
// Status reports).
func (p *Publisher) Close(ctx context.Context) error {
	p.once.Do(func() { close(p.stop) })
	defer p.cancel()
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel() // the PUT in flight
		<-p.done
	}
	if !p.dirty() {
		return nil
	}
	if err := p.publish(ctx); err != nil {
		p.failed(err)
		return fmt.Errorf("publish head record at shutdown: %w", err)
	}
	return nil
}

// run publishes whenever woken, until Close.
func (p *Publisher) run() {
	defer close(p.done)
	backoff := minBackoff
	var last time.Time // start of the last PUT round
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		for p.dirty() {
			if wait := p.gap - time.Since(last); wait > 0 {
				select {
				case <-p.stop:
					return
				case <-time.After(wait):
				}
			}
			last = time.Now()
			err := p.publish(p.ctx)
			if err == nil {
				backoff = minBackoff
				continue
			}
			if p.ctx.Err() != nil {
				return
			}
			if errors.Is(err, s3backend.ErrConditionalUnsupported) {
				p.halt(err)
				return
			}
			since := p.failed(err)
			p.log.Warn("publishing the head record failed; will retry (followers poll it: they see new commits late until it succeeds)",
				"failing_since", since.Format(time.RFC3339), "retry_in", backoff, "err", err)
			select {
			case <-p.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// dirty says whether something changed since the last record written, or
// Close is due and the stopped flag is not set.
func (p *Publisher) dirty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending() && p.st.Stopped == nil
}

// pending says whether changes wait for a record that would carry them:
// none do once the object is the overflow marker (followers list). Caller
// holds p.mu.
func (p *Publisher) pending() bool {
	return p.gen > p.pubGen && !p.st.Overflow
}

// publish writes the current record: one conditional PUT on the ETag last
// seen, and after each failed precondition a read, merge and another try.
func (p *Publisher) publish(ctx context.Context) error {
	p.mu.Lock()
	seeded := p.seeded
	p.mu.Unlock()
	if !seeded {
		if err := p.reload(ctx); err != nil {
			return err
		}
	}
	for round := 1; ; round++ {
		if p.check != nil {
			if err := p.check(); err != nil {
				return fmt.Errorf("publish head record: %w", err)
			}
		}
		// The entries are never changed once made (Uploaded makes new
		// ones), so a copy of the map is a snapshot; the encoding, which
		// for many databases takes a while, runs outside the lock.
		p.mu.Lock()
		gen, etag, base, local, overflow := p.gen, p.etag, p.base, maps.Clone(p.local), p.st.Overflow
		p.mu.Unlock()
		if overflow {
			return nil // found by the read before this round: the marker stays
		}
		rec, body, named, err := build(base, local, p.who, time.Now())
		if err != nil {
			return err
		}
		var newETag string
		if etag == "" {
			newETag, err = p.cw.PutIfAbsent(ctx, Key, body)
		} else {
			newETag, err = p.cw.PutIfMatch(ctx, Key, body, etag)
		}
		if err == nil {
			p.wrote(rec, newETag, gen)
			if rec.Overflow {
				p.log.Warn("the replica has more databases than the head record can name: followers list the replica on every poll instead (5 LISTs per database) from now on",
					"databases", named, "limit_bytes", s3backend.MaxConditionalSize)
			}
			return nil
		}
		if !errors.Is(err, s3backend.ErrPreconditionFailed) {
			return fmt.Errorf("publish head record: %w", err)
		}
		if round == maxRounds {
			return fmt.Errorf("publish head record: it changed under us %d times in a row; another walfs writes this replica path: %w", round, err)
		}
		if err := p.reload(ctx); err != nil {
			return err
		}
	}
}

// build makes the next record: the entries of the databases changed since
// Start (local) over those of the object last seen (base), under the next
// seq. When it would not fit in a conditional object, each database names
// fewer files; when it does not fit with one file each, the record is the
// overflow marker (Record.Overflow). named is how many databases the
// record names, or would have named.
func build(base Record, local map[string]*DB, writer string, now time.Time) (rec Record, body []byte, named int, err error) {
	for n := MaxFiles; ; n /= 2 {
		rec = Record{Version: Version, Seq: base.Seq + 1, Written: now.UTC(), Writer: writer, DBs: map[string]DB{}}
		for db, e := range base.DBs {
			if _, touched := local[db]; !touched {
				rec.DBs[db] = e.trimmed(n)
			}
		}
		for db, e := range local {
			if e != nil {
				rec.DBs[db] = e.trimmed(n)
			}
		}
		named = len(rec.DBs)
		if n == 0 { // too many even with one file each
			rec.DBs, rec.Overflow = map[string]DB{}, true
		}
		if body, err = rec.marshal(); err != nil {
			return Record{}, nil, 0, fmt.Errorf("encode head record: %w", err)
		}
		if len(body) <= s3backend.MaxConditionalSize || rec.Overflow {
			return rec, body, named, nil
		}
	}
}

// wrote records a successful PUT of rec, built at gen.
func (p *Publisher) wrote(rec Record, etag string, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.Overflow = p.st.Overflow || rec.Overflow
	p.base, p.etag, p.seeded = rec, etag, true
	p.pubGen = max(p.pubGen, gen)
	p.st.Seq = rec.Seq
	p.st.Publishes++
	p.st.LastPublish = rec.Written
	if p.st.LastErr != nil {
		p.log.Info("publishing the head record succeeds again", "failed_since", p.st.FailingSince.Format(time.RFC3339))
	}
	p.st.LastErr, p.st.FailingSince = nil, time.Time{}
}

// reload reads the object as it is now into base. An unreadable one is
// replaced by the next PUT (its ETag is kept for that); its entries are
// lost, and the databases uploaded from here on fill the record again.
func (p *Publisher) reload(ctx context.Context) error {
	body, etag, err := p.cw.Get(ctx, Key)
	var rec Record
	switch {
	case errors.Is(err, s3backend.ErrNotFound):
		etag = ""
	case err != nil:
		return fmt.Errorf("read head record: %w", err)
	default:
		rec, err = Parse(body)
		switch {
		case errors.Is(err, ErrOverflow):
			// The marker stays: a record of only the databases this run
			// uploads would not name the others.
			p.mu.Lock()
			p.st.Overflow = true
			p.mu.Unlock()
		case err != nil:
			p.log.Warn("the head record is unreadable; the next publish replaces it", "err", err)
			rec = Record{}
		}
	}
	if rec.DBs == nil {
		rec.DBs = map[string]DB{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base, p.etag, p.seeded = rec, etag, true
	p.st.Seq = rec.Seq
	return nil
}

// failed counts a failed publish and returns when the current run of
// failures began.
func (p *Publisher) failed(err error) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.Errors++
	p.st.LastErr = err
	if p.st.FailingSince.IsZero() {
		p.st.FailingSince = time.Now()
	}
	return p.st.FailingSince
}

// halt stops publishing for good.
func (p *Publisher) halt(err error) {
	p.failed(err)
	p.mu.Lock()
	p.st.Stopped = err
	p.mu.Unlock()
	p.log.Warn("the replica store has no conditional writes: no head record is published; followers list the replica instead", "err", err)
}
