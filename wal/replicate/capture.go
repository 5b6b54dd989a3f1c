package replicate

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// WALOpen implements fusefs.Capturer.
func (r *Replicator) WALOpen(db string, f *os.File) error {
	d, err := r.get(db)
	if err != nil {
		return err
	}
	return d.walOpen(f)
}

// walOpen is WALOpen for d.
func (d *DB) walOpen(f *os.File) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.walOpened(f)
}

// WALWrite implements fusefs.Capturer: it captures every transaction the
// write commits, before the write returns.
func (r *Replicator) WALWrite(db string, f *os.File, off int64, n int) error {
	d, err := r.get(db)
	if err != nil {
		return err
	}
	return d.walWrite(f, off, n)
}

// walWrite is WALWrite for d.
func (d *DB) walWrite(f *os.File, off int64, n int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.walLoaded {
		if err := d.walOpened(f); err != nil {
			return err
		}
	}
	d.walSize = max(d.walSize, off+int64(n))
	if err := d.capture.Wrote(f, off, n, d.walSize); err != nil {
		return fmt.Errorf("capture %s: %w", d.rel, err)
	}
	return nil
}

// WALTruncate implements fusefs.Capturer.
func (r *Replicator) WALTruncate(db string, f *os.File, size int64) error {
	d, err := r.get(db)
	if err != nil {
		return err
	}
	return d.walTruncate(f, size)
}

// walTruncate is WALTruncate for d.
func (d *DB) walTruncate(f *os.File, size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.walLoaded {
		return d.walOpened(f)
	}
	if d.env.capture == CapturePassthrough {
		if err := d.poll(); err != nil { // catch up before the frames go
			return err
		}
	}
	d.walSize = size
	d.capture.Truncated(size)
	return nil
}

// WALSync implements fusefs.Capturer: in userspace mode every commit was
// captured as it was written, and SQLite's fsync of the WAL also makes the
// spooled transactions durable. (In passthrough mode the mount does not call
// it: the commits are durable in the WAL itself, a restart spools them from
// there (replay.go), and DBSync syncs the spool before a checkpoint lets
// SQLite restart the WAL. A second fsync per commit, of a file that grows,
// cost synchronous=FULL about a fifth of its speed.)
func (r *Replicator) WALSync(db string) error {
	d, err := r.find(db)
	if d == nil {
		return err
	}
	return d.syncSpool()
}

// BeforeWALTruncate implements fusefs.Capturer: what the kernel wrote to the
// WAL is read before the truncation cuts it off.
func (r *Replicator) BeforeWALTruncate(db string) error { return r.catchUpWAL(db) }

// Removed implements fusefs.Capturer.
func (r *Replicator) Removed(path string) {
	if db, ok := strings.CutSuffix(path, "-wal"); ok {
		if d := r.lookup(db); d != nil {
			d.walRemoved()
		}
		return
	}
	if d := r.lookup(path); d != nil {
		d.removed()
	}
}

// walRemoved is Removed for d's WAL.
func (d *DB) walRemoved() {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Passthrough: capture whatever is left (normally nothing: the WAL was
	// checkpointed). The unlink already happened, so an error cannot fail
	// it: the next commit writes a snapshot instead of chaining onto a
	// lineage that may miss a transaction.
	if err := d.poll(); err != nil {
		d.needSnap = true
		d.log.Error("capture of the removed wal failed; the next commit writes a snapshot", "err", err)
	}
	d.capture.Reset()
	d.closeWALReader()
	d.walLoaded, d.walSize = false, 0
	d.stamp = stampOf(d.path)
}

// removed is Removed for d's database file.
func (d *DB) removed() {
	d.mu.Lock()
	d.capture.Reset()
	d.closeWALReader()
	d.walLoaded, d.walSize = false, 0
	d.sums, d.needSnap, d.stamp = nil, true, fileStamp{}
	d.dirty.reset()
	_, err := os.Lstat(d.path)
	gone := errors.Is(err, os.ErrNotExist)
	if gone {
		// Gone, not replaced by a rename: nothing will restore to what
		// it spooled. (A file renamed over it starts with a snapshot,
		// which supersedes the spool anyway.)
		d.dropPending()
	}
	d.mu.Unlock()
	d.log.Info("database removed; a new one at this path starts with a snapshot")
	if gone && d.env.removed != nil {
		d.env.removed(d.rel)
	}
}
