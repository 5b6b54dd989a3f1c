package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/walfs/walfs/wal"
)

// Outside writers (docs/design.md, "The rule for any writer").
//
// walfs captures what SQLite does through the mount: WAL frames, rollback
// journals. A program that writes the same files without following SQLite's
// protocol — cp or rsync over a database, a file renamed over it, a WAL
// truncated or copied in, bytes appended — changes what SQLite reads without
// a commit walfs can capture. The mount reports such events (Suspect); at the
// database's next quiet moment the reconciler reads the database as SQLite
// would and, where that differs from what walfs last shipped, reloads its
// capture from the files and writes a snapshot of them. `walfs sync` and
// unmount reconcile at once (Reconcile).
//
// Quiet: no connection holds a write lock on the database (Locks.Quiet
// asks the kernel's lock table: SQLite's RESERVED, PENDING and EXCLUSIVE
// locks on the db file, the WAL_WRITE, CKPT and RECOVER locks on its -shm),
// no rollback journal is hot, and no mark arrived for reconcileSettle (the
// mount marks again when a suspect handle is closed, so a copy in progress
// is reconciled once it is done).
//
// Quiet is one instant: a connection may begin to write right after. So the
// reconciler reads the files as a SQLite reader would:
//   - WAL: it holds the -shm read locks that keep checkpoints out of the
//     database file and the WAL from restarting (Locks.HoldWAL), and takes
//     the WAL's committed frames by their checksums. Writers go on
//     appending; commits that land meanwhile are captured as records
//     (settleWAL), not folded into a snapshot.
//   - Rollback journal: taking SQLite's SHARED lock would make a writer
//     without a busy timeout fail, so the reconciler reads optimistically
//     and keeps the result only if the file is the same version after the
//     read (size, modification time, change counter) and still quiet.

// Locks is the mount's view of SQLite's locks on a database (fusefs.Mount).
type Locks interface {
	// Quiet reports whether no SQLite connection holds a write lock on
	// the database rel, and if one does, which.
	Quiet(rel string) (quiet bool, why string)
	// HoldWAL keeps rel's database file and committed WAL frames as they
	// are, without stopping WAL writers, until release. shm is false when
	// rel has no -shm to hold (then Quiet must say no writer is in); why
	// says why not now.
	HoldWAL(rel string) (release func(), shm bool, why string)
}

// SetLocks gives the Replicator the mount's view of SQLite's locks. Until
// then (and in tests without a mount) every database counts as quiet.
func (r *Replicator) SetLocks(l Locks) { r.locks.Store(&l) }

// reconcileSettle is how long a database must go without a new mark before
// it is reconciled in the background: long enough to coalesce a copy's
// open, writes and close, short against the few-second bound.
const reconcileSettle = 200 * time.Millisecond

// reconcileRetry is how soon a database that was busy is tried again.
const reconcileRetry = 250 * time.Millisecond

// suspects are the databases whose files changed outside SQLite's protocol,
// by path. Owned by the Replicator; mu guards the map only.
type suspects struct {
	mu   sync.Mutex
	m    map[string]suspectMark
	wake chan struct{} // buffered 1: a mark arrived
}

type suspectMark struct {
	why string
	at  time.Time
	gen uint64 // increases with every mark, so a reconcile that raced a newer mark keeps it
}

var suspectGen struct {
	sync.Mutex
	n uint64
}

// dbOfPath maps a file of the mount to the database it belongs to.
func dbOfPath(path string) string {
	for _, sfx := range []string{"-wal", "-journal", "-shm"} {
		if db, ok := strings.CutSuffix(path, sfx); ok && db != "" {
			return db
		}
	}
	return path
}

// Suspect implements fusefs.Capturer: path (a database, its -wal or its
// -journal) changed in a way SQLite's protocol does not explain.
func (r *Replicator) Suspect(path, why string) {
	db := dbOfPath(path)
	if strings.HasPrefix(db, StateDirName+"/") || db == StateDirName {
		return
	}
	r.sus.mark(db, why)
}

// mark records that db changed outside SQLite's protocol and wakes the loop.
func (s *suspects) mark(db, why string) {
	suspectGen.Lock()
	suspectGen.n++
	gen := suspectGen.n
	suspectGen.Unlock()
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]suspectMark)
	}
	s.m[db] = suspectMark{why: why, at: time.Now(), gen: gen}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// due returns the marks that have settled (all of them with now) and how
// long until the next one does (0: none).
func (s *suspects) due(now bool) (map[string]suspectMark, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	due := map[string]suspectMark{}
	var next time.Duration
	for db, m := range s.m {
		wait := reconcileSettle - time.Since(m.at)
		if now || wait <= 0 {
			due[db] = m
		} else if next == 0 || wait < next {
			next = wait
		}
	}
	return due, next
}

// done forgets db's mark m, unless a newer mark replaced it.
func (s *suspects) done(db string, m suspectMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[db]; ok && cur.gen == m.gen {
		delete(s.m, db)
	}
}

// list names the suspects and why, sorted.
func (s *suspects) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for db, m := range s.m {
		out = append(out, db+" ("+m.why+")")
	}
	sort.Strings(out)
	return out
}

// reconcileLoop reconciles suspect databases once they are quiet.
func (r *Replicator) reconcileLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := r.reconcileDue(ctx, false)
		if next > 0 {
			timer.Reset(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.sus.wake:
		case <-timer.C:
		}
	}
}

// Reconcile reconciles every suspect database now (`walfs sync`, unmount),
// without waiting for marks to settle, and returns the ones it could not
// because a writer holds them (they stay suspect and are reconciled once it
// lets go).
func (r *Replicator) Reconcile(ctx context.Context) []string {
	r.reconcileDue(ctx, true)
	return r.sus.list()
}

// pathOf is the backing path of database rel.
func (r *Replicator) pathOf(rel string) string {
	return filepath.Join(r.opts.DataDir, filepath.FromSlash(rel))
}

// reconcileDue reconciles the suspects whose marks have settled (all of
// them with now) and returns how long until the next one is due (0: none).
func (r *Replicator) reconcileDue(ctx context.Context, now bool) time.Duration {
	due, next := r.sus.due(now)
	for db, m := range due {
		if ctx.Err() != nil {
			return 0
		}
		done, err := r.reconcileOne(ctx, db, m.why)
		if err != nil {
			r.log.Error("reconcile a database written outside SQLite; will retry", "db", db, "err", err)
		}
		if !done || err != nil {
			if next == 0 || reconcileRetry < next {
				next = reconcileRetry
			}
			continue
		}
		r.sus.done(db, m)
	}
	return next
}

// reconcileOne makes the replica of db describe what SQLite reads from its
// files now, if they are quiet. done is false when they are not.
func (r *Replicator) reconcileOne(ctx context.Context, db, why string) (done bool, err error) {
	path := r.pathOf(db)
	if !isDatabase(path) {
		// Gone, empty, or not SQLite: nothing SQLite would read. A database
		// deleted here keeps its last replicated state.
		return true, nil
	}
	quiet := func() bool { return true }
	if l := r.locks.Load(); l != nil {
		quiet = func() bool { ok, _ := (*l).Quiet(db); return ok }
		release, shm, busy := (*l).HoldWAL(db)
		defer release()
		if busy != "" || (!shm && !quiet()) {
			return false, nil
		}
	}
	d, err := r.get(db)
	if err != nil {
		return false, err
	}
	return d.reconcile(why, quiet)
}

// reconcile re-reads the database from its files and snapshots it if it is
// not what walfs last captured. The caller holds the WAL still (HoldWAL);
// quiet asks again that no SQLite writer holds the database. done is false
// when a writer got in the way; the caller tries again later.
func (d *DB) reconcile(why string, quiet func() bool) (done bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.journalLive() {
		return false, nil // a hot journal: the next connection rolls it back first
	}
	before := versionOf(d.path)
	// Capture what SQLite itself committed so far, as usual.
	if err := d.poll(); err != nil {
		// Not lost: the snapshot below is taken from the files themselves.
		d.needSnap = true
		d.log.Warn("capture before reconciling failed; reconciling with a snapshot", "err", err)
	}
	wf, err := os.Open(d.path + "-wal")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("open wal of %s: %w", d.rel, err)
	}
	var idx *wal.Index
	if wf != nil {
		defer wf.Close() // read only
		var settled bool
		if idx, settled, err = d.settleWAL(wf, quiet); err != nil || !settled {
			return false, err
		}
	} else if d.walLoaded {
		d.capture.Reset()
		d.closeWALReader()
		d.walLoaded, d.walSize = false, 0
	}
	var ra io.ReaderAt // nil without a WAL (a nil *os.File would not be)
	if wf != nil {
		ra = wf
	}
	sums, err := d.computeSums(ra, idx)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", d.rel, err)
	}
	if wf == nil && (versionOf(d.path) != before || !quiet() || d.journalLive()) {
		return false, nil // a rollback-journal writer got in: read it again
	}
	if sums == nil {
		return true, nil // empty: nothing to ship until its first commit
	}
	d.checked.Add(1)
	if !d.needSnap && d.sums != nil && d.sums.pageSize == sums.pageSize && d.sums.checksum() == sums.checksum() {
		d.dirty.reset()
		return true, nil
	}
	d.checkSnaps.Add(1)
	d.needSnap = true
	if err := d.snapshot(nil, ra, idx, false); err != nil {
		return false, err
	}
	d.dirty.reset()
	d.stamp = fileStamp{}
	d.log.Warn("database changed outside SQLite's protocol; wrote a snapshot of what SQLite reads now", "why", why, "txid", d.txid)
	if err := d.syncSpool(); err != nil {
		return false, err
	}
	return true, nil
}

// settleWAL returns the committed index of the WAL in wf as SQLite reads it
// now. When the WAL is the one the capture follows, grown by commits, those
// commits are captured as records first, so that a reconcile does not fold
// them into a snapshot, and the index is the capture's. When it is not
// (copied, truncated or replaced), the capture is reloaded from the file:
// what it remembered no longer describes it. Caller holds d.mu and the WAL
// still (HoldWAL), so the frames the index names stay as they are.
//
// In userspace mode every WAL write SQLite makes comes through the mount,
// and its WALWrite captures it (with --durability sync, waiting for the
// store before SQLite may call the transaction committed) once d.mu is
// free. Frames the file holds that the capture does not may belong to such
// a write, blocked on d.mu: its writer then holds the WAL write lock, so
// settled is false unless quiet, asked after the file was read, says no
// writer does. Reloading them would take the commit without WALWrite, and
// without its wait for the store.
func (d *DB) settleWAL(wf *os.File, quiet func() bool) (idx *wal.Index, settled bool, err error) {
	fi, err := wf.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat wal of %s: %w", d.rel, err)
	}
	now := wal.NewCapture(nil)
	if idx, err = now.Load(wf, fi.Size()); err != nil {
		return nil, false, fmt.Errorf("load wal of %s: %w", d.rel, err)
	}
	if ahead, ok := d.capture.Follows(now); ok && d.walLoaded && !d.needSnap {
		if ahead == 0 {
			return idx, true, nil
		}
		if d.env.capture != CapturePassthrough {
			return nil, false, nil // WALWrite is about to capture them
		}
		err := d.poll()
		if _, ok := now.Follows(d.capture); err == nil && ok {
			return d.capture.Committed(), true, nil
		}
		if err != nil {
			d.needSnap = true // as in reconcile: the files are snapshot instead
			d.log.Warn("capture before reconciling failed; reconciling with a snapshot", "err", err)
		}
	}
	if d.env.capture != CapturePassthrough && !quiet() {
		return nil, false, nil
	}
	// The file as now read it, not read again: frames written since may be
	// a userspace write's, still to be reported.
	d.capture.Adopt(now)
	d.walLoaded, d.walSize = true, fi.Size()
	if d.env.capture == CapturePassthrough {
		d.closeWALReader()
		if err := d.openWALReader(); err != nil {
			return nil, false, err
		}
	}
	return idx, true, nil
}

// dbVersion identifies a version of a database file: its stamp (size and
// modification time, stampOf) and the change counter a rollback-journal
// commit bumps in its header.
type dbVersion struct {
	fileStamp
	counter [4]byte
}

// versionOf returns path's version; a file that cannot be read has the
// zero one.
func versionOf(path string) dbVersion {
	f, err := openRead(path)
	if err != nil {
		return dbVersion{}
	}
	defer f.Close() // read only
	h, err := readDBHeader(f)
	if err != nil {
		return dbVersion{}
	}
	v := dbVersion{fileStamp: h.stamp}
	if h.n >= 28 { // a short file has no counter; the stamp still tells
		copy(v.counter[:], h.b[24:28])
	}
	return v
}
