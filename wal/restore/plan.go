package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// Target is the point a restore lands on. The zero Target means the latest
// transaction in the replica. With TXID set the restore lands exactly on that
// transaction; with Timestamp set it lands on the newest point whose files
// were all committed at or before it. Both may be set; both then apply.
type Target struct {
	TXID      uint64
	Timestamp time.Time
}

// IsLatest reports whether t is the zero Target (restore the latest state).
func (t Target) IsLatest() bool { return t.TXID == 0 && t.Timestamp.IsZero() }

// String describes t for messages.
func (t Target) String() string {
	switch {
	case t.IsLatest():
		return "latest"
	case t.Timestamp.IsZero():
		return fmt.Sprintf("TXID %d", t.TXID)
	case t.TXID == 0:
		return t.Timestamp.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("TXID %d at or before %s", t.TXID, t.Timestamp.UTC().Format(time.RFC3339Nano))
	}
}

// Plan is the ordered list of objects a restore applies.
type Plan struct {
	DB        string
	Files     []s3backend.FileInfo // snapshot first, then files extending TXID contiguously
	TXID      uint64               // the point the restore lands on
	Timestamp time.Time            // commit time of that point (CreatedAt of the last file)
	Bytes     int64                // total size of Files
	PageSize  uint32               // from the last file's header
	DBSize    int64                // database size in bytes at TXID (Commit*PageSize of the last file)
}

// snapshotLevels and compactionLevels are the levels a restore reads, in the
// order it prefers them (docs/format.md: 9 = snapshots, 3..0 = files).
var compactionLevels = []int{s3backend.MaxCompactionLevel, 2, 1, s3backend.LevelL0}

// MakePlan lists the replica of db and chooses the objects that rebuild it at
// target: the newest level-9 snapshot at or before the target, then greedily
// the file (any of levels 3..0) that starts at or before the next TXID and
// reaches furthest without passing the target, until the target is reached.
// That is the fewest files possible. Without a snapshot, a run of files
// starting at TXID 1 works too (Litestream may produce that).
//
// It reads the header of the last file (one small ranged read) for the page
// size and database size. For a timestamp target on a store that implements
// s3backend.Stater, it reads the exact commit time of the few objects around
// the target in each level (see timeLimits), never of every object.
func MakePlan(ctx context.Context, st s3backend.Store, db string, target Target) (*Plan, error) {
	for attempt := 0; ; attempt++ {
		p, err := makePlan(ctx, st, db, target)
		if errors.Is(err, errListingChanged) && attempt < 3 {
			continue
		} else if errors.Is(err, errListingChanged) {
			return nil, withHint(fmt.Errorf("plan restore of %s to %s: %w", dbName(db), target, err),
				"objects keep disappearing while planning (retention or compaction running); retry")
		}
		return p, err
	}
}

func makePlan(ctx context.Context, st s3backend.Store, db string, target Target) (*Plan, error) {
	snaps, files, err := listReplica(ctx, st, db)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 && len(files) == 0 {
		return nil, withHint(fmt.Errorf("plan restore of %s: %w in %s", dbName(db), ErrNoBackups, st),
			"check the replica URL: it must name the directory or prefix that holds the level folders (0000, 0009, …)")
	}
	var limits map[int]uint64
	if !target.Timestamp.IsZero() {
		levels := [][]s3backend.FileInfo{snaps}
		for i := 0; i < len(files); {
			j := i
			for j < len(files) && files[j].Level == files[i].Level {
				j++
			}
			levels = append(levels, files[i:j])
			i = j
		}
		if limits, err = timeLimits(ctx, st, levels, target.Timestamp); err != nil {
			return nil, err
		}
	}

	p, err := choose(db, snaps, files, target, limits)
	if err != nil {
		return nil, err
	}
	last := p.Files[len(p.Files)-1]
	hdr, err := ReadHeader(ctx, st, last)
	if err != nil {
		return nil, err
	}
	p.PageSize = hdr.PageSize
	p.DBSize = int64(hdr.Commit) * int64(hdr.PageSize)
	if hdr.Timestamp != 0 {
		// The header holds the commit time (ms): exact even where the
		// listing only gave an upload time.
		p.Timestamp = time.UnixMilli(hdr.Timestamp).UTC()
	}
	return p, nil
}

// listReplica returns the snapshots (ascending MaxTXID) and the files of
// levels 3..0 (grouped by level, each level sorted by MinTXID).
func listReplica(ctx context.Context, st s3backend.Store, db string) (snaps, files []s3backend.FileInfo, err error) {
	list, err := st.List(ctx, db, s3backend.LevelSnapshot)
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots of %s in %s: %w", dbName(db), st, err)
	}
	for _, f := range list {
		if f.MinTXID == 1 { // anything else is not a snapshot (docs/format.md)
			snaps = append(snaps, f)
		}
	}
	slices.SortFunc(snaps, func(a, b s3backend.FileInfo) int { return cmp.Compare(a.MaxTXID, b.MaxTXID) })
	for _, level := range compactionLevels {
		list, err := st.List(ctx, db, level)
		if err != nil {
			return nil, nil, fmt.Errorf("list level %d of %s in %s: %w", level, dbName(db), st, err)
		}
		files = append(files, list...)
	}
	return snaps, files, nil
}

// choose builds the plan from the listings; it does no I/O. For a timestamp
// target, limits holds per level the MaxTXID of the last object committed at
// or before it (timeLimits).
func choose(db string, snaps, files []s3backend.FileInfo, target Target, limits map[int]uint64) (*Plan, error) {
	within := func(f s3backend.FileInfo) bool {
		if target.TXID != 0 && f.MaxTXID > target.TXID {
			return false
		}
		if !target.Timestamp.IsZero() && f.MaxTXID > limits[f.Level] {
			return false
		}
		return true
	}

	var chain []s3backend.FileInfo
	var cur uint64
	for i := len(snaps) - 1; i >= 0; i-- {
		if within(snaps[i]) {
			chain = append(chain, snaps[i])
			cur = snaps[i].MaxTXID
			break
		}
	}

	cands := make([]s3backend.FileInfo, 0, len(files))
	for _, f := range files {
		if within(f) {
			cands = append(cands, f)
		}
	}
	if len(chain) == 0 && !slices.ContainsFunc(cands, func(f s3backend.FileInfo) bool { return f.MinTXID == 1 }) {
		return nil, noSnapshotErr(db, snaps, files, target)
	}
	rest, cur := Cover(cands, cur)
	chain = append(chain, rest...)

	want := cur
	switch {
	case target.TXID != 0:
		want = target.TXID
	default:
		for _, f := range slices.Concat(snaps, files) {
			if within(f) {
				want = max(want, f.MaxTXID)
			}
		}
	}
	if cur != want {
		return nil, unreachableErr(db, chain, snaps, files, cur, target)
	}

	p := &Plan{DB: db, Files: chain, TXID: cur, Timestamp: chain[len(chain)-1].CreatedAt}
	for _, f := range chain {
		p.Bytes += f.Size
	}
	return p, nil
}

// Cover extends a restore that has reached TXID from with files, the way
// every restore chooses (an interval cover): among the files starting at or
// before the next TXID, take the one reaching furthest (see better); repeat
// until none reaches further. It returns the files taken and the TXID
// reached. Replica maintenance plans with it too, so that what it writes and
// deletes keeps every restore it promises possible.
func Cover(files []s3backend.FileInfo, from uint64) (chain []s3backend.FileInfo, reached uint64) {
	cands := slices.Clone(files)
	slices.SortStableFunc(cands, func(a, b s3backend.FileInfo) int { return cmp.Compare(a.MinTXID, b.MinTXID) })
	reached = from
	var best *s3backend.FileInfo
	for i := 0; ; {
		for ; i < len(cands) && cands[i].MinTXID <= reached+1; i++ {
			if best == nil || better(cands[i], *best) {
				best = &cands[i]
			}
		}
		if best == nil || best.MaxTXID <= reached {
			return chain, reached
		}
		chain = append(chain, *best)
		reached = best.MaxTXID
	}
}

// better reports whether a is a better next step than b: it reaches further,
// or as far with fewer bytes, or as far and as small from a higher level.
func better(a, b s3backend.FileInfo) bool {
	if a.MaxTXID != b.MaxTXID {
		return a.MaxTXID > b.MaxTXID
	}
	if a.Size != b.Size {
		return a.Size < b.Size
	}
	return a.Level > b.Level
}

// noSnapshotErr explains why there is nothing to start a restore from.
func noSnapshotErr(db string, snaps, files []s3backend.FileInfo, target Target) error {
	err := fmt.Errorf("plan restore of %s to %s: %w", dbName(db), target, ErrNoSnapshot)
	if len(snaps) > 0 {
		s := snaps[0]
		return withHint(fmt.Errorf("%w (the oldest snapshot, %s, ends at TXID %d, committed %s)",
			err, s3backend.Key(s), s.MaxTXID, fmtTime(s.CreatedAt)),
			"choose a later --txid or --timestamp")
	}
	if len(files) > 0 {
		first := slices.MinFunc(files, func(a, b s3backend.FileInfo) int { return cmp.Compare(a.MinTXID, b.MinTXID) })
		return withHint(fmt.Errorf("%w: the replica has no snapshot and its oldest file %s starts at TXID %d",
			err, s3backend.Key(first), first.MinTXID),
			"the replica is incomplete (pruned, or copied in part); check the replica URL")
	}
	return err
}

// unreachableErr explains why the chain stopped at cur short of the target.
func unreachableErr(db string, chain, snaps, files []s3backend.FileInfo, cur uint64, target Target) error {
	lastKey := ""
	if len(chain) > 0 {
		lastKey = s3backend.Key(chain[len(chain)-1])
	}
	all := slices.Concat(snaps, files)

	// A file continues from cur but ends past the target: it cannot be split.
	var span *s3backend.FileInfo
	for i, f := range files {
		if f.MinTXID <= cur+1 && f.MaxTXID > cur && (span == nil || f.MaxTXID < span.MaxTXID) {
			span = &files[i]
		}
	}
	if span != nil {
		return withHint(fmt.Errorf("plan restore of %s to %s: %w: the replica reaches TXID %d (%s); "+
			"the next point it holds is TXID %d (%s covers %d..%d, committed %s)",
			dbName(db), target, ErrTargetUnreachable, cur, lastKey,
			span.MaxTXID, s3backend.Key(*span), span.MinTXID, span.MaxTXID, fmtTime(span.CreatedAt)),
			fmt.Sprintf("older files were compacted; restore TXID %d or %d instead", cur, span.MaxTXID))
	}

	// Nothing continues from cur: either a gap or the end of the replica.
	var next *s3backend.FileInfo
	latest := cur
	for i, f := range all {
		latest = max(latest, f.MaxTXID)
		if f.MinTXID > cur+1 && (next == nil || f.MinTXID < next.MinTXID) {
			next = &all[i]
		}
	}
	if next != nil {
		gap := &GapError{From: cur + 1, To: next.MinTXID - 1, Before: lastKey, After: s3backend.Key(*next)}
		return withHint(fmt.Errorf("plan restore of %s to %s: %w", dbName(db), target, gap),
			fmt.Sprintf("the replica is incomplete; restore TXID %d or earlier, or check that the replica URL is the whole replica", cur))
	}
	return withHint(fmt.Errorf("plan restore of %s to %s: %w: the latest TXID in the replica is %d",
		dbName(db), target, ErrTargetUnreachable, latest),
		"run `walfs ls` on the replica URL to see the restorable range")
}

// dbName names db in messages.
func dbName(db string) string {
	if db == "" {
		return "database"
	}
	return fmt.Sprintf("database %q", db)
}

// fmtTime formats t for messages; zero is "unknown".
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
