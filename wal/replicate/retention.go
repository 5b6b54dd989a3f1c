package replicate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// Retention deletes what no restore inside the window needs. The window
// starts at the cutoff, now minus Retention. Its base is the newest snapshot
// committed at or before the cutoff: every transaction committed after the
// cutoff comes after it, so restores inside the window start from it or from
// a newer snapshot. Kept are:
//
//   - the base and every newer snapshot (so always the newest one);
//   - every file committed after the cutoff (the points inside the window);
//   - the fewest files that lead from the snapshot governing each of those
//     files' starting points, and the latest TXID, to it.
//
// Everything else goes: older snapshots, files covered by the base, and
// files from before the cutoff that a higher level covers (level-0 files
// compacted into level 1, and so on). Before anything is deleted, the plan is
// checked: every point restorable now that lies inside the window, and the
// latest, must stay restorable. Until a snapshot is older than the cutoff,
// nothing is deleted.

// deleteBatch bounds the objects of one Delete call.
const deleteBatch = 1000

// retain applies retention to db's replica at now.
func (dm *dbMaint) retain(ctx context.Context, now time.Time) error {
	level9, files := dm.m.store.all(dm.db)
	del, err := retentionPlan(level9, files, now, dm.m.opts.Retention)
	if err != nil {
		return fmt.Errorf("retention of %s: %w", dm.db, err)
	}
	for batch := range slices.Chunk(del, deleteBatch) {
		if err := dm.m.store.Delete(maintenanceCtx(ctx), batch); err != nil {
			return fmt.Errorf("retention of %s: delete: %w", dm.db, err)
		}
	}
	if len(del) > 0 {
		dm.log.Info("retention deleted files no restore inside the window needs", "files", len(del), "retention", dm.m.opts.Retention)
	}
	return nil
}

// retentionPlan returns the files of a replica (level-9 files and files of
// levels 0..3) to delete at now with the given window, or an error when the
// plan would lose a restorable point it must keep (a bug: nothing is deleted).
func retentionPlan(level9, files []s3backend.FileInfo, now time.Time, window time.Duration) ([]s3backend.FileInfo, error) {
	snaps := snapshotsOf(level9)
	cutoff := now.Add(-window)
	baseIdx := -1
	for i, s := range snaps {
		if !s.CreatedAt.IsZero() && !s.CreatedAt.After(cutoff) {
			baseIdx = i
		}
	}
	if baseIdx < 0 {
		return nil, nil
	}
	base := snaps[baseIdx]
	keptSnaps := snaps[baseIdx:]

	keep := map[s3backend.FileInfo]bool{}
	inWindow := func(f s3backend.FileInfo) bool { return f.CreatedAt.IsZero() || f.CreatedAt.After(cutoff) }
	ends := map[uint64]bool{} // TXIDs kept files and snapshots land on
	for _, s := range keptSnaps {
		ends[s.MaxTXID] = true
	}
	for _, f := range files {
		if inWindow(f) {
			keep[key(f)] = true
			ends[f.MaxTXID] = true
		}
	}
	// Roots: points the kept files start from that no kept file ends on.
	roots := []uint64{latestTXID(snaps, files)}
	for _, f := range files {
		if keep[key(f)] && f.MinTXID-1 > base.MaxTXID && !ends[f.MinTXID-1] {
			roots = append(roots, f.MinTXID-1)
		}
	}
	slices.Sort(roots)
	for _, r := range slices.Compact(roots) {
		g, ok := governing(keptSnaps, r)
		if !ok {
			continue
		}
		chain, ok := chainTo(files, g.MaxTXID, r)
		if !ok {
			continue // not restorable now either
		}
		for _, f := range chain {
			keep[key(f)] = true
		}
	}

	var del, keptFiles []s3backend.FileInfo
	del = append(del, snaps[:baseIdx]...)
	for _, f := range files {
		if keep[key(f)] {
			keptFiles = append(keptFiles, f)
		} else {
			del = append(del, f)
		}
	}
	if len(del) == 0 {
		return nil, nil
	}
	if err := checkRetention(snaps, files, keptSnaps, keptFiles, base.MaxTXID, cutoff); err != nil {
		return nil, err
	}
	return del, nil
}

// checkRetention verifies that the kept files still restore every point
// inside the window (after the base, committed after the cutoff) and the
// latest point that the replica restores now.
func checkRetention(snaps, files, keptSnaps, keptFiles []s3backend.FileInfo, baseTXID uint64, cutoff time.Time) error {
	before := restorable(snaps, files)
	after := restorable(keptSnaps, keptFiles)
	committed := map[uint64]time.Time{}
	for _, f := range slices.Concat(snaps, files) {
		if f.CreatedAt.After(committed[f.MaxTXID]) || f.CreatedAt.IsZero() {
			committed[f.MaxTXID] = f.CreatedAt
		}
	}
	latest := latestTXID(snaps, files)
	for p := range before {
		t := committed[p]
		needed := p == latest || (p > baseTXID && (t.IsZero() || t.After(cutoff)))
		if needed && !after[p] {
			return fmt.Errorf("refusing to delete: the plan would make TXID %d unrestorable", p)
		}
	}
	return nil
}

// key identifies a file in maps (CreatedAt and Size left out: the same
// object may be known with different times).
func key(f s3backend.FileInfo) s3backend.FileInfo {
	return s3backend.FileInfo{DB: f.DB, Level: f.Level, MinTXID: f.MinTXID, MaxTXID: f.MaxTXID}
}
