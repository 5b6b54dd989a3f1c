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

// checkLineage proves the replica of d can be restored to its newest
// point (dbMaint.checkLineage). It lists the store, so it runs at start and
// when a flush is verified, never while idle.
func (r *Replicator) checkLineage(ctx context.Context, d *DB) (repaired bool, err error) {
	return r.maint.lookup(d.rel).checkLineage(ctx, d.up.Status().Uploaded.TXID)
}

// checkLineage proves the replica can be restored to its newest point: a
// snapshot followed by contiguous files. If an object went missing (deleted
// by hand, a lifecycle rule, a bad copy) it repairs the replica with a new
// snapshot (repair.go), so the latest state is restorable again, and
// reports true. uploaded is the newest TXID walfs uploaded (0: none yet,
// nothing to check).
func (dm *dbMaint) checkLineage(ctx context.Context, uploaded uint64) (repaired bool, err error) {
	if uploaded == 0 {
		return false, nil
	}
	seen := dm.floorNow()
	_, err = restore.MakePlan(ctx, dm.m.store, dm.db, restore.Target{})
	if err == nil || errors.Is(err, restore.ErrNoBackups) {
		return false, nil
	}
	if !errors.Is(err, restore.ErrGap) && !errors.Is(err, restore.ErrNoSnapshot) {
		return false, fmt.Errorf("check replica of %s: %w", dm.db, err)
	}
	if _, err := dm.repair(ctx, seen, inconsistent(err)); err != nil {
		return false, err
	}
	return true, nil
}

// snapshotNow spools a snapshot of the database as captured so far and
// returns its TXID; 0 when it cannot now (an empty database, or a
// rollback-journal transaction in progress): the next commit writes it.
func (d *DB) snapshotNow() (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.poll(); err != nil {
		return 0, err
	}
	if !d.walLoaded && d.journalLive() {
		d.needSnap = true // mid-transaction: the commit writes it
		return 0, nil
	}
	var r io.ReaderAt
	var idx *wal.Index
	if d.walLoaded {
		if f, err := os.Open(d.path + "-wal"); err == nil {
			defer f.Close() // read only
			r, idx = f, d.capture.Committed()
		}
	}
	d.needSnap = true
	if err := d.snapshot(nil, r, idx, false); err != nil {
		return 0, err
	}
	if d.needSnap {
		return 0, nil // empty: nothing to snapshot yet
	}
	return d.txid, nil
}
