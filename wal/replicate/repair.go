package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

// A replica is inconsistent when it does not describe the database walfs
// captured: an object the index lists is missing or damaged, TXIDs have a
// gap, checksums do not chain, a rebuilt image does not match the checksum
// its last file records, or the latest point differs from the live database
// (`walfs verify`). Retrying the step that found it cannot help, so it is
// repaired at once: a new snapshot of the local database is spooled and
// uploaded (a new TXID, so restores of the latest point start from it), and
// compaction and scheduled snapshots never read what it covers again. One
// log line says so and `walfs status` counts it.
//
// Nothing repairs forever: a job whose findings caused maxRepairsInARow
// repairs without one clean run in between stops repairing, and any job that
// fails maxAttempts times in a row is parked until the replica changes.

// ErrInconsistent matches (errors.Is) every error saying that the replica
// does not describe a consistent database.
var ErrInconsistent = errors.New("replica is inconsistent")

// inconsistentError marks err as a finding of inconsistency.
type inconsistentError struct{ err error }

func (e *inconsistentError) Error() string        { return e.err.Error() }
func (e *inconsistentError) Unwrap() error        { return e.err }
func (e *inconsistentError) Is(target error) bool { return target == ErrInconsistent }

// inconsistent marks err as a finding of inconsistency; nil stays nil.
func inconsistent(err error) error {
	if err == nil || errors.Is(err, ErrInconsistent) {
		return err
	}
	return &inconsistentError{err: err}
}

// classify marks the errors of store reads and restore planning that prove
// the replica inconsistent: an object that is gone or damaged, a gap, no
// snapshot to start from, a point walfs uploaded that is not restorable.
// Anything else (the store unreachable, a local disk error) is returned as
// is: retrying may help and a snapshot would not.
func classify(err error) error {
	for _, e := range []error{s3backend.ErrNotFound, restore.ErrGap, restore.ErrNoSnapshot, restore.ErrNoBackups,
		restore.ErrTargetUnreachable, restore.ErrCorrupt, restore.ErrChecksumMismatch} {
		if errors.Is(err, e) {
			return inconsistent(err)
		}
	}
	return err
}

// Bounds on retries.
const (
	// maxAttempts is how many times in a row a job may fail before it is
	// parked: it then runs only once the replica changed (a new upload) and
	// status says why it stopped.
	maxAttempts = 6
	// maxRepairsInARow is how many repairs one job's findings may cause
	// with no clean run of it in between; after that its findings are
	// ordinary failures (a replica that breaks again at once needs a person).
	maxRepairsInARow = 3
	// repairUploadTimeout bounds the wait for a repairing snapshot to reach
	// the store.
	repairUploadTimeout = 2 * time.Minute
)

// repairRecord is what status shows of the last repair.
type repairRecord struct {
	at   time.Time
	txid uint64
	why  string
}

// repair replaces db's inconsistent replica with a new snapshot of the
// local database and says so in one log line. found is what showed the
// inconsistency; seen is dm.floor when the finder started looking: if a
// repair finished since, the replica is already repaired and nothing is
// written. It returns the TXID of the snapshot, which the store holds.
func (dm *dbMaint) repair(ctx context.Context, seen uint64, found error) (uint64, error) {
	if dm.snapshotLocal == nil {
		return 0, found // no local database (tests that drive the store alone)
	}
	dm.repairMu.Lock()
	defer dm.repairMu.Unlock()
	if floor := dm.floorNow(); floor > seen {
		return floor, nil
	}
	txid, err := dm.snapshotLocal(ctx)
	if err != nil {
		return 0, fmt.Errorf("repair inconsistent replica of %s (%v): %w", dm.db, found, err)
	}
	dm.mu.Lock()
	dm.repairs++
	dm.lastRepair = repairRecord{at: time.Now(), txid: txid, why: found.Error()}
	dm.floor = max(dm.floor, txid)
	dm.mu.Unlock()
	dm.log.Warn(fmt.Sprintf("replica of %s was inconsistent (%v); wrote a new snapshot at TXID %d", dm.db, found, txid),
		"txid", txid)
	return txid, nil
}

// floorNow is the TXID of the newest repairing snapshot: compaction and
// scheduled snapshots never read files at or below it.
func (dm *dbMaint) floorNow() uint64 {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	return dm.floor
}

// latest is the highest TXID the index knows for db.
func (dm *dbMaint) latest() uint64 {
	snaps, files := dm.m.store.all(dm.db)
	return latestTXID(snaps, files)
}

// repairSnapshot spools a snapshot of the database as it is now and waits
// until the store holds it. It backs dbMaint.repair.
func (d *DB) repairSnapshot(ctx context.Context) (uint64, error) {
	txid, err := d.snapshotNow()
	if err != nil {
		return 0, err
	}
	if txid == 0 {
		return 0, errors.New("cannot snapshot the database now (empty, or in the middle of a rollback-journal transaction): its next commit writes the snapshot")
	}
	ctx, cancel := context.WithTimeout(ctx, repairUploadTimeout)
	defer cancel()
	if err := d.up.uploadThrough(ctx, txid); err != nil {
		return 0, fmt.Errorf("upload the new snapshot at TXID %d: %w", txid, err)
	}
	return txid, nil
}

// runJob runs a job and turns what it finds into repairs, and failures into
// backoff and, after maxAttempts, a parked job. Called from runDue.
func (dm *dbMaint) runJob(ctx context.Context, j *job, now time.Time) {
	if j.parked {
		if dm.latest() == j.parkedAt {
			return // nothing changed since it gave up: no request
		}
		j.parked = false // the replica changed: one more try
	}
	seen := dm.floorNow()
	err := j.run(ctx, now)
	if ctx.Err() != nil {
		return
	}
	clean := err == nil
	if errors.Is(err, ErrInconsistent) {
		switch {
		case dm.floorNow() > seen:
			err = nil // repaired meanwhile (sync or verify found it too)
		case j.repairs >= maxRepairsInARow:
			err = fmt.Errorf("%w (still inconsistent after %d repairs in a row; not repairing again)", err, j.repairs)
		default:
			if _, rerr := dm.repair(ctx, seen, err); rerr != nil {
				err = rerr
			} else {
				j.repairs++
				err = nil
			}
		}
	}
	if err == nil {
		j.fails = 0
		if clean {
			j.repairs = 0
		}
		dm.unstuck(j.name)
		return
	}
	j.fails++
	if j.fails < maxAttempts {
		dm.failed(j.kind, err)
		return
	}
	j.parked, j.parkedAt = true, dm.latest()
	dm.stuckOn(j, err)
}

// stuckOn records that j gave up.
func (dm *dbMaint) stuckOn(j *job, err error) {
	dm.log.Error("replica maintenance stuck; it tries again after the next upload", "job", j.name, "attempts", j.fails, "err", err)
	dm.mu.Lock()
	defer dm.mu.Unlock()
	dm.errs[j.kind]++
	dm.lastErr, dm.lastErrAt = err, time.Now()
	dm.stuck[j.name] = fmt.Sprintf("%s failed %d times in a row; it tries again after the next upload: %v", j.name, j.fails, err)
}

// unstuck forgets that the job named name gave up, once it ran through.
func (dm *dbMaint) unstuck(name string) {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	delete(dm.stuck, name)
}

// damaged marks an error decoding a replica object as an inconsistency.
func damaged(err error) error { return inconsistent(fmt.Errorf("damaged object: %w", err)) }
