package replicate

import (
	"cmp"
	"math"
	"slices"
	"sort"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

// The replica's restore rule, as wal/restore applies it (docs/format.md): a
// restore to TXID t starts from the newest snapshot at or before t (or from
// nothing, when no snapshot is and files start at TXID 1) and extends the
// TXID range with files of levels 3..0, each starting at or before the next
// TXID (files may overlap what is already applied), until it lands exactly on
// t. Maintenance plans with the same rule so that what it writes and deletes
// keeps every restore it promises possible.

// chainTo returns the fewest files that take a database from TXID from to
// exactly TXID to, choosing like restore does (restore.Cover). ok is false
// when no chain reaches to.
func chainTo(files []s3backend.FileInfo, from, to uint64) (chain []s3backend.FileInfo, ok bool) {
	var cands []s3backend.FileInfo
	for _, f := range files {
		if f.MaxTXID > from && f.MaxTXID <= to {
			cands = append(cands, f)
		}
	}
	chain, reached := restore.Cover(cands, from)
	return chain, reached == to
}

// snapshotsOf returns the real snapshots among level-9 files (MinTXID 1),
// oldest first.
func snapshotsOf(level9 []s3backend.FileInfo) []s3backend.FileInfo {
	var out []s3backend.FileInfo
	for _, f := range level9 {
		if f.MinTXID == 1 {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b s3backend.FileInfo) int { return cmp.Compare(a.MaxTXID, b.MaxTXID) })
	return out
}

// governing returns the snapshot a restore to TXID t starts from: the newest
// at or before t. ok is false when there is none.
func governing(snaps []s3backend.FileInfo, t uint64) (s3backend.FileInfo, bool) {
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i].MaxTXID <= t {
			return snaps[i], true
		}
	}
	return s3backend.FileInfo{}, false
}

// restorable returns every TXID a restore can land on. snaps must come from
// snapshotsOf.
func restorable(snaps, files []s3backend.FileInfo) map[uint64]bool {
	points := map[uint64]bool{}
	var starts []uint64
	if slices.ContainsFunc(files, func(f s3backend.FileInfo) bool { return f.MinTXID == 1 }) {
		starts = append(starts, 0) // restores before the first snapshot start from nothing
	}
	for _, s := range snaps {
		if len(starts) == 0 || starts[len(starts)-1] != s.MaxTXID {
			starts = append(starts, s.MaxTXID)
		}
	}
	byMax := slices.Clone(files)
	slices.SortFunc(byMax, func(a, b s3backend.FileInfo) int { return cmp.Compare(a.MaxTXID, b.MaxTXID) })
	for k, start := range starts {
		limit := uint64(math.MaxUint64)
		if k+1 < len(starts) {
			limit = starts[k+1] // later points start from the next snapshot
		}
		if start > 0 {
			points[start] = true
		}
		reached := []uint64{start} // ascending
		i := sort.Search(len(byMax), func(i int) bool { return byMax[i].MaxTXID > start })
		for ; i < len(byMax) && byMax[i].MaxTXID < limit; i++ {
			f := byMax[i]
			j := sort.Search(len(reached), func(j int) bool { return reached[j]+1 >= f.MinTXID })
			if j == len(reached) || reached[j] >= f.MaxTXID {
				continue
			}
			if reached[len(reached)-1] != f.MaxTXID {
				reached = append(reached, f.MaxTXID)
			}
			points[f.MaxTXID] = true
		}
	}
	return points
}

// latestTXID is the highest TXID any of the files reaches.
func latestTXID(snaps, files []s3backend.FileInfo) uint64 {
	var n uint64
	for _, f := range slices.Concat(snaps, files) {
		n = max(n, f.MaxTXID)
	}
	return n
}
