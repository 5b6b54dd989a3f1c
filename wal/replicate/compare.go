package replicate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal"
	"github.com/walfs/walfs/wal/restore"
)

// Comparison is what `walfs verify` reports for one database: the checksum of
// the database as SQLite reads it now against the checksum the replica
// records for its latest point. Exactly one of Difference, Err and Skipped is
// set unless they are equal.
type Comparison struct {
	DB       string
	TXID     uint64       // the point compared: the last transaction walfs captured (CompareDir: the replica's latest)
	Live     ltx.Checksum // the database file overlaid with the committed frames of its WAL, read now
	Captured ltx.Checksum // what walfs's capture holds for TXID
	Replica  ltx.Checksum // post-apply checksum of the last file a restore of the latest point reads
	Files    int          // files that restore reads (snapshot first)

	Difference string // why live and replica differ; "" when they do not
	Err        string // why the comparison could not be made (the store unreachable, the database busy)
	Skipped    string // why there was nothing to compare (an empty or removed database)

	RepairTXID uint64 // the snapshot that repaired the difference; 0 if none
	RepairErr  string // why the repair failed
}

// Equal reports whether the replica's latest point is the live database.
func (c Comparison) Equal() bool { return c.Difference == "" && c.Err == "" && c.Skipped == "" }

// Compare compares, for every database, the live database with the latest
// point of its replica. For each it first uploads everything captured (while
// holding the database's capture lock, so nothing is spooled after the point
// it compares; commits of that database wait for the upload and one read of
// every page), then reads the replica's plan for the latest point from the
// store: one listing per level, and the header and trailer of each file of
// the plan except the snapshot's header (small ranged reads; no snapshot is
// downloaded). It checks that the pre- and post-apply checksums chain and
// that the last post-apply checksum equals the live database's. A database
// that differs is repaired with a new snapshot when repair is true.
func (r *Replicator) Compare(ctx context.Context, repair bool) []Comparison {
	//walfs:ignore-error when ctx ends first, the databases resumed so far are compared (each comparison then reports ctx's error)
	r.WaitResumed(ctx)
	var out []Comparison
	for _, d := range r.all() {
		out = append(out, r.compare(ctx, d, repair))
	}
	return out
}

// liveAttempts bounds how often compare re-reads a database whose file does
// not match what walfs captured: in passthrough mode a checkpoint may write
// pages of commits walfs has not polled yet while the file is read.
const liveAttempts = 4

func (r *Replicator) compare(ctx context.Context, d *DB, repair bool) Comparison {
	c := Comparison{DB: d.rel}
	dm := r.maint.lookup(d.rel)
	seen := dm.floorNow()
	var st liveState
	var err error
	for attempt := 1; ; attempt++ {
		st, err = d.liveState(ctx)
		if err != nil || st.settled() || attempt == liveAttempts || !waitCtx(ctx, time.Duration(attempt)*50*time.Millisecond) {
			break
		}
	}
	if err != nil {
		c.Err = err.Error()
		return c
	}
	c.TXID, c.Live, c.Captured = st.txid, st.live, st.captured
	switch {
	case st.skipped != "":
		c.Skipped = st.skipped
		return c
	case st.busy != "":
		c.Err = st.busy
		return c
	}
	pt, err := latestPoint(ctx, r.maint.store, d.rel, st.txid, d.up.uploadedTXID)
	c.Replica, c.Files = pt.sum, pt.files
	var found error
	switch {
	case err != nil && !errors.Is(err, ErrInconsistent):
		c.Err = err.Error()
		return c
	case err != nil:
		found = err
	case st.live != pt.sum && st.live != st.captured:
		found = fmt.Errorf("the live database has checksum %s at TXID %d, the replica %s, and walfs captured %s: the database changed behind walfs's back", st.live, st.txid, pt.sum, st.captured)
	case st.live != pt.sum:
		found = fmt.Errorf("the live database has checksum %s at TXID %d, the replica %s", st.live, st.txid, pt.sum)
	case st.live != st.captured:
		found = fmt.Errorf("walfs's capture holds checksum %s at TXID %d, the live database and the replica %s: the next transactions would not chain", st.captured, st.txid, st.live)
	default:
		return c
	}
	c.Difference = found.Error()
	if repair {
		txid, err := dm.repair(ctx, seen, found)
		if err != nil {
			c.RepairErr = err.Error()
		}
		c.RepairTXID = txid
	}
	return c
}

// liveState is the local side of a comparison.
type liveState struct {
	txid           uint64
	live, captured ltx.Checksum
	skipped, busy  string
}

// settled reports whether the read found the file as walfs captured it (or
// gave up for a reason a re-read cannot change).
func (s liveState) settled() bool {
	return s.skipped != "" || (s.busy == "" && s.live == s.captured)
}

// liveState uploads what was captured and reads the database as SQLite
// would, all under the capture lock.
func (d *DB) liveState(ctx context.Context) (liveState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.poll(); err != nil {
		return liveState{}, err
	}
	if _, err := os.Stat(d.path); errors.Is(err, os.ErrNotExist) {
		return liveState{skipped: "the database file was removed; the replica keeps its last state"}, nil
	}
	if !d.walLoaded && d.journalLive() {
		return liveState{busy: "a rollback-journal transaction is in progress; try again"}, nil
	}
	if err := d.syncSpool(); err != nil {
		return liveState{}, err
	}
	txid := d.up.Status().Last
	if err := d.up.uploadThrough(ctx, txid); err != nil {
		return liveState{}, fmt.Errorf("upload TXID %d of %s before comparing: %w", txid, d.rel, err)
	}
	sums, err := d.readLive()
	if err != nil {
		return liveState{}, err
	}
	s := liveState{txid: txid}
	if sums != nil {
		s.live = sums.checksum()
	}
	if d.sums != nil {
		s.captured = d.sums.checksum()
	}
	if sums == nil && txid == 0 {
		s.skipped = "empty database; nothing replicated yet"
	}
	return s, nil
}

// readLive reads every page of the database as a new SQLite connection
// would: the db file, overlaid with the committed frames of the WAL on disk,
// validated afresh rather than taken from walfs's capture (which is what is
// being checked). Caller holds d.mu.
func (d *DB) readLive() (*pageSums, error) {
	f, err := os.Open(d.path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return d.computeSums(nil, nil)
	} else if err != nil {
		return nil, fmt.Errorf("open wal of %s: %w", d.rel, err)
	}
	defer f.Close() // read only
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat wal of %s: %w", d.rel, err)
	}
	idx, err := wal.NewCapture(nil).Load(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("read wal of %s: %w", d.rel, err)
	}
	return d.computeSums(f, idx)
}

// point is what the replica records for one point.
type point struct {
	txid  uint64
	sum   ltx.Checksum
	files int
}

// latestPoint reads from the store the checksum of the latest point of db's
// replica, which must be txid (any, when txid is 0): it plans the restore of
// the latest point (listing every level), then reads the header and trailer
// of each file of the plan (not the snapshot's header) and checks that
// checksums chain. When the replica is past txid with TXIDs walfs uploaded
// since (uploaded reports them), the point txid itself is read. Errors
// proving the replica inconsistent match ErrInconsistent.
func latestPoint(ctx context.Context, st s3backend.Store, db string, txid uint64, uploaded func() uint64) (point, error) {
	plan, err := restore.MakePlan(ctx, st, db, restore.Target{})
	if err == nil && txid > 0 && plan.TXID > txid && uploaded() >= plan.TXID {
		plan, err = restore.MakePlan(ctx, st, db, restore.Target{TXID: txid}) // commits since: ours
	}
	if err != nil {
		if txid == 0 {
			return point{}, classify(fmt.Errorf("the replica cannot be restored to its latest point: %w", err))
		}
		return point{}, classify(fmt.Errorf("the replica cannot be restored to TXID %d: %w", txid, err))
	}
	pt := point{txid: plan.TXID, files: len(plan.Files)}
	switch {
	case txid == 0:
	case plan.TXID < txid:
		return pt, inconsistent(fmt.Errorf("the replica's latest point is TXID %d, but walfs uploaded TXID %d (objects are missing)", plan.TXID, txid))
	case plan.TXID > txid:
		return pt, inconsistent(fmt.Errorf("the replica's latest point is TXID %d, past the TXID %d walfs captured (written by someone else?)", plan.TXID, txid))
	}
	var prev ltx.Checksum
	for i, f := range plan.Files {
		snapshot := i == 0 && f.Level == s3backend.LevelSnapshot
		if !snapshot {
			hdr, err := restore.ReadHeader(ctx, st, f)
			if err != nil {
				return pt, classify(err)
			}
			if i > 0 && !hdr.NoChecksum() && prev != 0 && hdr.PreApplyChecksum != prev {
				return pt, inconsistent(fmt.Errorf("checksum chain breaks at %s: pre-apply %s, the file before ends at %s", s3backend.Key(f), hdr.PreApplyChecksum, prev))
			}
		}
		prev, err = readPostApply(ctx, st, f)
		if err != nil {
			return pt, classify(err)
		}
	}
	if prev == 0 {
		last := plan.Files[len(plan.Files)-1]
		return pt, inconsistent(fmt.Errorf("%s records no checksum (written by another tool?)", s3backend.Key(last)))
	}
	pt.sum = prev
	return pt, nil
}

// CompareDir is Compare for a data dir no mount serves: for each database
// in dataDir it compares the database as SQLite would read it (the db file
// and the committed frames of its WAL) with the latest point of its replica
// in st, reading the same few bytes of the store as Compare. It repairs
// nothing: the next mount of the data dir writes a snapshot of a database
// that does not match its replica. Databases only the replica holds are
// reported skipped (the next mount restores them).
func CompareDir(ctx context.Context, st s3backend.Store, dataDir string) ([]Comparison, error) {
	local, err := localDatabases(dataDir)
	if err != nil {
		return nil, err
	}
	remote, err := st.ListDatabases(ctx)
	if err != nil {
		return nil, fmt.Errorf("list databases in %s: %w", st, err)
	}
	var out []Comparison
	for _, db := range local {
		out = append(out, compareFile(ctx, st, dataDir, db))
	}
	for _, db := range remote {
		if !slices.Contains(local, db) {
			out = append(out, Comparison{DB: db, Skipped: "only in the replica; the next mount restores it"})
		}
	}
	slices.SortFunc(out, func(a, b Comparison) int { return strings.Compare(a.DB, b.DB) })
	return out, nil
}

// compareFile compares one database file of a data dir no mount serves.
func compareFile(ctx context.Context, st s3backend.Store, dataDir, db string) Comparison {
	c := Comparison{DB: db}
	d := &DB{rel: db, path: filepath.Join(dataDir, filepath.FromSlash(db))}
	if d.journalLive() {
		c.Err = "a hot rollback journal is beside the database: SQLite rolls it back at the next open (open it once, then verify)"
		return c
	}
	sums, err := d.readLive()
	if err != nil {
		c.Err = err.Error()
		return c
	}
	if sums != nil {
		c.Live = sums.checksum()
	}
	pt, err := latestPoint(ctx, st, db, 0, nil)
	c.TXID, c.Replica, c.Files = pt.txid, pt.sum, pt.files
	switch {
	case errors.Is(err, restore.ErrNoBackups) && sums == nil:
		c.Skipped = "empty database; nothing replicated yet"
	case err != nil && errors.Is(err, ErrInconsistent):
		c.Difference = err.Error()
	case err != nil:
		c.Err = err.Error()
	case c.Live != c.Replica:
		c.Difference = fmt.Sprintf("the database has checksum %s, the replica's latest point (TXID %d) %s", c.Live, c.TXID, c.Replica)
	}
	return c
}
