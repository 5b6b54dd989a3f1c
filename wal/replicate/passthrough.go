package replicate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walfs/walfs/wal"
)

// Capture paths. In userspace mode every -wal write comes through walfs and
// is captured before it returns. In passthrough mode the kernel writes the
// -wal file directly; walfs reads new frames from the backing file when
// inotify reports a change, and — so that no committed frame can be lost to
// a WAL restart — catches up synchronously before any write to a database
// file reaches the disk (in WAL mode only checkpoints write the database
// file, and SQLite restarts the WAL only after a complete checkpoint).
type CaptureMode string

// The capture paths; CaptureAuto is a request that the command resolves to
// one of the others (New refuses it).
const (
	CaptureUserspace   CaptureMode = "userspace"
	CapturePassthrough CaptureMode = "passthrough"
	CaptureAuto        CaptureMode = "auto"
)

// ParseCapture parses a capture request: auto, passthrough or userspace.
func ParseCapture(s string) (CaptureMode, error) {
	switch m := CaptureMode(strings.ToLower(strings.TrimSpace(s))); m {
	case CaptureAuto, CapturePassthrough, CaptureUserspace:
		return m, nil
	}
	return "", fmt.Errorf("capture %q: want auto, passthrough or userspace", s)
}

// BeforeWrite implements fusefs.Capturer. Without a WAL (rollback-journal
// mode) it notes which pages the transaction writes; in passthrough mode, a
// write to a database file with a WAL (a checkpoint) first brings the
// capture of its WAL up to date. Database handles the kernel serves itself
// (DBPassthrough) never get here; their checkpoints are held by DBSync
// instead.
func (r *Replicator) BeforeWrite(path string, off int64, n int) error {
	d, err := r.find(path)
	if d == nil {
		return err // nil: not a database walfs tracks yet: its first commit snapshots
	}
	return d.beforeWrite(off, n)
}

// beforeWrite is BeforeWrite for d.
func (d *DB) beforeWrite(off int64, n int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.walLoaded {
		d.noteWrite(off, n)
		return nil
	}
	if d.env.capture != CapturePassthrough {
		return nil
	}
	return d.catchUp()
}

// DBSync implements fusefs.Capturer. In passthrough mode SQLite syncs the
// database at the end of every checkpoint that reached the end of the WAL,
// before it records the checkpoint as complete and so before it may restart
// the WAL over the frames it copied (wal.c walCheckpoint): the capture must
// hold them by then (spooled; the database itself holds them durably once
// this sync is done, see catchUp). With synchronous=OFF there is no such sync;
// wal.Capture.Poll then finishes a generation restarted unseen, or reports
// that it cannot.
func (r *Replicator) DBSync(path string) error {
	if r.opts.Capture != CapturePassthrough {
		return nil
	}
	return r.catchUpWAL(path)
}

// catchUpWAL runs catchUp for the database at path if walfs tracks it and it
// has a WAL.
func (r *Replicator) catchUpWAL(path string) error {
	d, err := r.find(path)
	if d == nil {
		return err
	}
	return d.catchUpWAL()
}

// catchUpWAL runs catchUp if d has a WAL.
func (d *DB) catchUpWAL() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.walLoaded {
		return nil
	}
	return d.catchUp()
}

// DBPassthrough implements fusefs.Capturer.
func (r *Replicator) DBPassthrough(path string, open bool) {
	r.mu.Lock()
	first := open && !r.directSeen[path]
	if open {
		r.direct[path]++
		r.directSeen[path] = true
	} else if r.direct[path]--; r.direct[path] <= 0 {
		delete(r.direct, path)
	}
	r.mu.Unlock()
	if d := r.lookup(path); open && d != nil {
		d.kernelOpened()
	}
	if first {
		r.log.Info("database file served by the kernel: checkpoints wait for capture at its fsync, rollback-journal commits are read from the journal", "db", path)
	}
}

// untracked reports whether a handle the kernel serves alone (so that its
// writes are not seen) is open on the database at path.
func (r *Replicator) untracked(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.direct[path] > 0
}

// catchUp reads what SQLite appended to the WAL since the last poll (only if
// inotify saw a change), before a checkpoint may let SQLite restart the WAL
// over those frames. Caller holds d.mu.
//
// The records must be in the spool file by then: records a failed write
// (disk full) left in memory are written now, and if that fails the
// checkpoint fails and the WAL keeps the transactions. The spool is not
// fsynced. A checkpoint copies the frames into the database and SQLite syncs
// it before it restarts the WAL, so the database holds everything the WAL
// held; a power cut that takes the spool's unsynced tail leaves the database
// past the spool, and the next start spools a snapshot of it (resume;
// spoolWriter.unsynced says which spool syncs remain). An fsync here, on
// every checkpoint, cost four processes writing one database a sixth of
// their speed.
func (d *DB) catchUp() error {
	walPath := d.path + "-wal"
	if d.env.watch != nil && !d.env.watch.takeDirty(walPath) {
		d.capture.Seal()
		return d.spool.flush()
	}
	err := d.poll()
	if err == nil {
		d.capture.Seal()
		err = d.spool.flush()
	}
	if err != nil {
		if d.env.watch != nil {
			d.env.watch.markDirty(walPath)
		}
		return err
	}
	return nil
}

// pollNow is poll for callers that do not hold d.mu.
func (d *DB) pollNow() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.poll()
}

// pollWoken is poll for the watcher's wake-ups: the frames of an open
// transaction after the wal-index's last commit are validated only now and
// then (wal.Capture.PollIndexed, wal/tail.go). Every other poll (before a
// checkpoint, a WAL truncation or removal, a sync, verify, a reconcile)
// validates them all.
func (d *DB) pollWoken() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.pollWith(false)
	if d.capture.SkippedTail() {
		// wal.Capture.SkippedTail: validate everything once the writes
		// stop (each new wake-up postpones it).
		if d.tailRecheck == nil {
			d.tailRecheck = time.AfterFunc(tailRecheck, d.recheckTail)
		} else {
			d.tailRecheck.Reset(tailRecheck)
		}
	}
	return err
}

// tailRecheck is how long after a watcher's poll that left an open tail
// unread the next full poll comes, if no other wakes up before.
const tailRecheck = 50 * time.Millisecond

// recheckTail is the full poll after pollWoken left an open tail unread.
func (d *DB) recheckTail() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.env.life.Err() != nil {
		return // the Replicator closed
	}
	if err := d.poll(); err != nil {
		d.log.Error("capture failed; the next checkpoint retries it", "err", err)
	}
}

// poll reads whatever SQLite appended to the WAL since the last poll and
// spools the transactions it commits. Caller holds d.mu.
func (d *DB) poll() error { return d.pollWith(true) }

// pollWith is poll; with full false the frames of an open transaction are
// validated only now and then (pollWoken). Caller holds d.mu.
func (d *DB) pollWith(full bool) error {
	if !d.walLoaded || d.walf == nil {
		return nil
	}
	fi, err := d.walf.Stat()
	if err != nil {
		return fmt.Errorf("stat wal of %s: %w", d.rel, err)
	}
	d.walSize = fi.Size()
	ra := newReadAhead(d.walf, fi.Size())
	d.spool.beginBatch()
	if full {
		err = d.capture.CatchUp(ra, d.walIndex(), fi.Size())
	} else {
		err = d.capture.PollIndexed(ra, d.walIndex(), fi.Size())
	}
	d.noteIndexStats()
	last, berr := d.spool.endBatch()
	if last > 0 {
		d.up.spooled(last)
	}
	// Both errors count: a restart (ErrRestarted) still needs its snapshot
	// when the batch could not be written.
	err = errors.Join(err, berr)
	ra.release()
	if errors.Is(err, wal.ErrRestarted) {
		// Now, not at the next commit: there may be none for a long time,
		// and the replica would stay behind what SQLite committed.
		d.log.Warn("wal restarted before walfs could read all of the previous generation: writing a snapshot")
		d.needSnap = true
		return d.snapshot(nil, d.walf, d.capture.Committed(), false)
	}
	if err != nil {
		return fmt.Errorf("capture %s: %w", d.rel, err)
	}
	return nil
}

// openWALReader opens walfs's own read handle on the WAL for polling.
// Caller holds d.mu.
func (d *DB) openWALReader() error {
	if d.walf != nil {
		return nil
	}
	f, err := os.Open(d.path + "-wal")
	if err != nil {
		return fmt.Errorf("open wal of %s for capture: %w", d.rel, err)
	}
	d.walf = f
	if d.env.watch != nil {
		if err := d.env.watch.add(filepath.Dir(d.path)); err != nil {
			d.log.Warn("cannot watch the wal for changes; it is still captured before every checkpoint", "err", err)
		}
	}
	return nil
}

// walIndex returns walfs's read handle on the WAL's wal-index (-shm), opened
// on first use, or nil when there is none (SQLite keeps it in heap memory
// under locking_mode=EXCLUSIVE). The capture takes committed frames on its
// word (wal.PollIndexed), which needs the -shm file's own pages to be the
// ones SQLite maps: true in passthrough mode, where the kernel maps the
// backing file. SQLite removes the -shm file with the WAL, and walfs drops
// the handle then (closeWALReader). Caller holds d.mu.
func (d *DB) walIndex() io.ReaderAt {
	if d.shmf == nil {
		f, err := os.Open(d.path + "-shm")
		if err != nil {
			return nil // the checksum path needs none
		}
		d.shmf = f
	}
	return d.shmf
}

// noteIndexStats publishes the capture's wal-index counts for Status, and
// logs a wal-index the capture stopped trusting. Caller holds d.mu.
func (d *DB) noteIndexStats() {
	st := d.capture.IndexStats()
	d.indexFrames.Store(st.Frames)
	if d.indexRefused.Swap(st.Refused) < st.Refused {
		d.log.Warn("the wal-index (-shm) disagrees with the WAL: every frame is read and checksummed until SQLite removes the WAL")
	}
}

// closeWALReader drops the read handles when the WAL goes away.
func (d *DB) closeWALReader() {
	if d.walf != nil {
		d.walf.Close() //walfs:ignore-error read only: SQLite writes the WAL, walfs only reads it
		d.walf = nil
	}
	if d.shmf != nil {
		d.shmf.Close() //walfs:ignore-error read only: walfs never writes the wal-index
		d.shmf = nil
	}
}
