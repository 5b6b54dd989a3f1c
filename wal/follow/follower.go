package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal"
	"github.com/walfs/walfs/wal/restore"
)

// DefaultInterval is how often a follower asks the store for news.
const DefaultInterval = time.Second

// Options configure a Follower.
type Options struct {
	Store    s3backend.Store
	DataDir  string
	Source   Source        // news; ListSource(Store) when nil
	Interval time.Duration // between polls; DefaultInterval when 0
	Logger   *slog.Logger
	// Integrity is the SQLite check a full restore runs
	// (restore.IntegrityQuick when empty).
	Integrity string
}

// Follower keeps the databases of a data dir equal to a replica (doc.go).
type Follower struct {
	opts     Options
	src      Source
	stateDir string
	log      *slog.Logger

	// lock is set once before Go and read only by the applying goroutine.
	lock LockFunc
	// applyMu is held by whatever changes databases (Step, CatchUp, Start)
	// and by Verify, so a verification never reads a database mid-update.
	applyMu sync.Mutex

	// mu guards dbs, each dbState's fields and latest/lastPoll/pollErr.
	mu       sync.RWMutex
	dbs      map[string]*dbState
	latest   map[string]Latest // the Source's last answer
	lastPoll time.Time
	pollErr  string
	polls    uint64
	changes  uint64

	// runMu guards stop and stopped: Go and Close may come from different
	// goroutines (a control request, a signal).
	runMu   sync.Mutex
	stop    context.CancelFunc
	stopped chan struct{}
}

// dbState is one followed database. The applying goroutine changes it, under
// Follower.mu.
type dbState struct {
	rel      string
	txid     uint64
	checksum ltx.Checksum
	pageSize uint32
	pages    uint32
	commit   time.Time // commit time of txid on the primary, when known

	behindSince time.Time // when a newer TXID was first seen; zero when current
	waiting     string    // what the next update waits for ("readers", ...)
	lastErr     string
	applied     uint64 // updates applied since start
	reloads     uint64 // full restores since start
}

// New returns a Follower of opts.Store into opts.DataDir.
func New(opts Options) (*Follower, error) {
	if opts.Store == nil || opts.DataDir == "" {
		return nil, errors.New("follow: a store and a data dir are needed")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	src := opts.Source
	if src == nil {
		src = ListSource(opts.Store)
	}
	return &Follower{
		opts: opts, src: src, log: opts.Logger, lock: noLock,
		stateDir: filepath.Join(opts.DataDir, wal.StateDirName),
		dbs:      map[string]*dbState{},
	}, nil
}

// Start brings every database of the replica into the data dir and up to
// its newest point, before anyone reads: databases the data dir lacks are
// restored, ones it has are checked against their position (a marker left
// by a crash, or a checksum that differs, means a restore) and caught up,
// and ones the replica no longer has are removed.
func (f *Follower) Start(ctx context.Context) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if err := clearScratch(filepath.Join(f.stateDir, "tmp")); err != nil {
		return err
	}
	// A listing, not the head object: only a listing is sure to name every
	// database (a primary publishes the ones it uploaded to).
	news, _, err := ListSource(f.opts.Store).Poll(ctx)
	if err != nil {
		return fmt.Errorf("follow %s: %w", f.opts.Store, err)
	}
	f.tombstones(ctx, news)
	if _, ok := news[""]; ok {
		return fmt.Errorf("follow %s: the URL names one database, not a directory of them; follow the path above it (a follower serves every database under its replica path)", f.opts.Store)
	}
	if err := f.removeStrays(news); err != nil {
		return err
	}
	var errs []error
	for _, db := range sortedKeys(news) {
		if err := f.open(ctx, db, news[db]); err != nil {
			errs = append(errs, err)
		}
	}
	f.mu.Lock()
	f.latest, f.lastPoll = news, time.Now()
	f.mu.Unlock()
	return errors.Join(errs...)
}

// open adds db, from the data dir when its file is intact, else restored.
func (f *Follower) open(ctx context.Context, db string, l Latest) error {
	st, err := f.load(db)
	if err != nil {
		f.log.Warn("followed database cannot be trusted: restoring it", "db", db, "why", err)
	}
	if st == nil {
		if st, err = f.restoreNew(ctx, db); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.dbs[db] = st
	f.mu.Unlock()
	return f.update(ctx, st, l)
}

// load returns db's state from the data dir when its file matches its
// saved position, nil when there is nothing usable.
func (f *Follower) load(db string) (*dbState, error) {
	path := f.path(db)
	p, ok, err := f.loadPos(db)
	if err != nil || !ok {
		return nil, err
	}
	if f.marked(db) {
		return nil, errors.New("an update was cut short")
	}
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer file.Close() // read only
	var hdr [headerLen]byte
	if _, err := file.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, ok := wal.ParseDBHeader(hdr[:])
	if !ok {
		return nil, errors.New("not a SQLite database")
	}
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	pages := uint32(fi.Size() / int64(h.PageSize))
	sum, err := restore.Checksum(file, h.PageSize, pages)
	if err != nil {
		return nil, err
	}
	if sum != p.Checksum {
		return nil, fmt.Errorf("its checksum %s is not the %s its position at TXID %d says", sum, p.Checksum, p.TXID)
	}
	return &dbState{rel: db, txid: p.TXID, checksum: sum, pageSize: h.PageSize, pages: pages}, nil
}

// removeStrays removes databases the data dir holds from an earlier run
// that the replica no longer has.
func (f *Follower) removeStrays(news map[string]Latest) error {
	dir := filepath.Join(f.stateDir, "pos")
	var stray []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || filepath.Ext(p) != ".json" {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		db := filepath.ToSlash(rel[:len(rel)-len(".json")])
		if _, ok := news[db]; !ok {
			stray = append(stray, db)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read followed databases: %w", err)
	}
	for _, db := range stray {
		if err := f.remove(context.Background(), db); err != nil {
			return err
		}
	}
	return nil
}

func (f *Follower) path(db string) string {
	return filepath.Join(f.opts.DataDir, filepath.FromSlash(db))
}

// SetLock makes updates take SQLite's lock through lock (MountLock of the
// follower mount). Call it once the mount is up and before Go.
func (f *Follower) SetLock(lock LockFunc) { f.lock = lock }

// Go starts polling the Source every interval and applying what it says,
// on one goroutine, until Close. Errors are kept per database (Status) and
// retried at the next poll.
func (f *Follower) Go(ctx context.Context) {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.stop != nil {
		return // running
	}
	ctx, f.stop = context.WithCancel(ctx)
	f.stopped = make(chan struct{})
	go f.run(ctx, f.stopped)
}

func (f *Follower) run(ctx context.Context, stopped chan struct{}) {
	defer close(stopped)
	t := time.NewTicker(f.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.Step(ctx)
	}
}

// Step polls once and applies what is new; Go's goroutine calls it every
// interval.
func (f *Follower) Step(ctx context.Context) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	news, changed, err := f.src.Poll(ctx)
	f.mu.Lock()
	f.polls++
	f.lastPoll = time.Now()
	f.pollErr = ""
	if err != nil {
		f.pollErr = err.Error()
	} else if changed {
		f.latest = news
		f.changes++
	}
	latest := f.latest
	f.mu.Unlock()
	if err != nil {
		f.log.Warn("poll the replica", "err", err)
	}
	if latest == nil || !changed && !f.pending(latest) {
		return // steady state: no request but the poll
	}
	f.applyAll(ctx, latest, changed)
}

// pending reports whether a database is behind latest or its last update
// failed, so a poll without news still has work.
func (f *Follower) pending(latest map[string]Latest) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for db, l := range latest {
		st := f.dbs[db]
		if l.Deleted {
			if st != nil && st.txid <= l.TXID {
				return true
			}
			continue
		}
		if st == nil || st.txid < l.TXID || st.lastErr != "" {
			return true
		}
	}
	return false
}

// applyAll brings every database to what latest says; removals only when
// latest is news (each costs a listing).
func (f *Follower) applyAll(ctx context.Context, latest map[string]Latest, removals bool) {
	f.mu.RLock()
	var gone []string
	for db, st := range f.dbs {
		l, ok := latest[db]
		switch {
		case ok && l.Deleted && st.txid <= l.TXID:
			gone = append(gone, db) // the primary deleted it
		case !ok && removals:
			// The head object names the databases its primary uploaded to;
			// one it does not name may still be in the replica. Only a
			// listing proves it was deleted.
			if files, err := listAll(ctx, f.opts.Store, db, true); err == nil && len(files) == 0 {
				gone = append(gone, db)
			}
		}
	}
	f.mu.RUnlock()
	for _, db := range gone {
		if err := f.remove(ctx, db); err != nil {
			f.log.Warn("remove a database the replica no longer has", "db", db, "err", err)
		}
	}
	for _, db := range sortedKeys(latest) {
		l := latest[db]
		if l.Deleted {
			continue
		}
		f.mu.RLock()
		st := f.dbs[db]
		f.mu.RUnlock()
		var err error
		if st == nil {
			err = f.open(ctx, db, l)
		} else {
			err = f.update(ctx, st, l)
		}
		if err != nil && ctx.Err() == nil {
			f.log.Warn("follow database", "db", db, "err", err)
		}
	}
}

// CatchUp lists the replica (never trusting a head object, which a
// primary that died may not have published) and applies everything it
// holds. A promotion calls it after taking the lease: from then on the
// replica cannot move.
func (f *Follower) CatchUp(ctx context.Context) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	news, _, err := ListSource(f.opts.Store).Poll(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.latest = news
	f.mu.Unlock()
	f.applyAll(ctx, news, true)
	var errs []error
	f.mu.RLock()
	for db, l := range news {
		st := f.dbs[db]
		switch {
		case st == nil:
			errs = append(errs, fmt.Errorf("%s: not restored", db))
		case st.txid < l.TXID:
			errs = append(errs, fmt.Errorf("%s: at TXID %d of %d: %s", db, st.txid, l.TXID, st.lastErr))
		}
	}
	f.mu.RUnlock()
	return errors.Join(errs...)
}

// Close stops Go's goroutine and waits for it.
// Go may start it again.
func (f *Follower) Close() error {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.stop != nil {
		f.stop()
		<-f.stopped
		f.stop, f.stopped = nil, nil
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// clearScratch removes downloads and restores a killed follower left.
func clearScratch(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "follow-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range matches {
		errs = append(errs, os.RemoveAll(m))
	}
	return errors.Join(errs...)
}

// tombstones drops from a listing the databases the primary's head object
// says it deleted (their objects stay in the store), unless the listing
// shows a newer point: the database was created again. It reads the head
// object once, which also primes the Source.
func (f *Follower) tombstones(ctx context.Context, news map[string]Latest) {
	hs, ok := f.src.(*headSource)
	if !ok {
		return
	}
	heads, changed, err := hs.Poll(ctx)
	if err != nil || !changed {
		return
	}
	for db, h := range heads {
		if l, ok := news[db]; ok && h.Deleted && l.TXID <= h.TXID {
			delete(news, db)
		}
	}
}
