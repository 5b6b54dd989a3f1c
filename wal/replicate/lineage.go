package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/walfs/walfs/wal"
	"github.com/walfs/walfs/wal/restore"
)

// checkLineage proves the replica can be restored to its newest point: a
// snapshot followed by contiguous files. If an object went missing (deleted
// by hand, a lifecycle rule, a bad copy) it writes a new snapshot so the
// latest state is restorable again, and reports true. It lists the store,
// so it runs at start and when a flush is verified, never while idle.
func (d *DB) checkLineage(ctx context.Context) (repaired bool, err error) {
	d.up.mu.Lock()
	uploaded := d.up.uploaded.TXID
	d.up.mu.Unlock()
	if uploaded == 0 {
		return false, nil
	}
	_, err = restore.MakePlan(ctx, d.r.opts.Store, d.rel, restore.Target{})
	if err == nil || errors.Is(err, restore.ErrNoBackups) {
		return false, nil
	}
	if !errors.Is(err, restore.ErrGap) && !errors.Is(err, restore.ErrNoSnapshot) {
		return false, fmt.Errorf("check replica of %s: %w", d.rel, err)
	}
	d.log.Warn("replica cannot be restored to its latest point; writing a new snapshot", "problem", err)
	return true, d.snapshotNow()
}

// snapshotNow spools a snapshot of the database as captured so far.
func (d *DB) snapshotNow() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.poll(); err != nil {
		return err
	}
	if !d.walLoaded && d.journalLive() {
		d.needSnap = true // mid-transaction: the commit writes it
		return nil
	}
	var r io.ReaderAt
	var idx *wal.Index
	if d.walLoaded {
		if f, err := os.Open(d.path + "-wal"); err == nil {
			defer f.Close()
			r, idx = f, d.capture.Committed()
		}
	}
	d.needSnap = true
	return d.snapshot(nil, r, idx, false)
}
