package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// MaintenanceOptions schedule what walfs does to a replica besides uploading
// new transactions: compaction into levels 1..3, level-9 snapshots and
// retention. Zero fields take the defaults.
type MaintenanceOptions struct {
	// CompactionIntervals[i] is how often level i+1 is compacted from level
	// i. Default 30s, 5m, 1h (as Litestream).
	CompactionIntervals [s3backend.MaxCompactionLevel]time.Duration
	// SnapshotInterval is the age of the newest snapshot at which a new one
	// is written (if transactions followed it). Default 24h; negative: never
	// because of age.
	SnapshotInterval time.Duration
	// SnapshotFactor writes a snapshot when the level-0 bytes uploaded since
	// the newest snapshot exceed this multiple of its size. Default 10;
	// negative: never because of size.
	SnapshotFactor float64
	// Retention is how far back point-in-time restores must reach. Default
	// 24h; negative: delete nothing.
	Retention time.Duration
	// RetentionInterval is how often retention runs. Default: the interval
	// of the highest compaction level.
	RetentionInterval time.Duration
	// Disabled turns compaction, snapshots and retention off.
	Disabled bool
	// NoCache keeps no local copies of uploaded files for compaction to
	// read (writeCache): for a store whose reads cost no request and no
	// transfer, a file replica, where the copy only costs the disk.
	NoCache bool
}

// Defaults of MaintenanceOptions.
var (
	DefaultCompactionIntervals = [s3backend.MaxCompactionLevel]time.Duration{30 * time.Second, 5 * time.Minute, time.Hour}
	DefaultSnapshotInterval    = 24 * time.Hour
	DefaultSnapshotFactor      = 10.0
	DefaultRetention           = 24 * time.Hour
)

func (o MaintenanceOptions) withDefaults() MaintenanceOptions {
	for i, d := range o.CompactionIntervals {
		if d <= 0 {
			o.CompactionIntervals[i] = DefaultCompactionIntervals[i]
		}
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	if o.SnapshotFactor == 0 {
		o.SnapshotFactor = DefaultSnapshotFactor
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = o.CompactionIntervals[len(o.CompactionIntervals)-1]
	}
	return o
}

// maintenance is the Replicator's share of compaction, snapshots and
// retention: the index of what the replica holds, the write cache and each
// database's jobs (dbMaint), run by a scheduler shared by all of them.
type maintenance struct {
	opts   MaintenanceOptions
	store  *indexStore
	cache  *writeCache
	tmpDir string
	log    *slog.Logger

	mu  sync.Mutex
	dbs map[string]*dbMaint
}

// initMaintenance wraps the store with the index (so every upload is known
// without listing) and clears what a previous run left in the write cache
// and temp dir. New calls it; the data dir is locked by then.
func (r *Replicator) initMaintenance() {
	o := r.opts.Maintenance.withDefaults()
	cache := &writeCache{dir: filepath.Join(r.stateDir, "cache")}
	if remove, err := cache.reset(); err != nil {
		r.log.Warn("cannot empty the compaction cache; compaction will download its inputs", "err", err)
		cache.dir = ""
	} else {
		r.wg.Add(1)
		go func() { // the old copies may be many: behind the mount
			defer r.wg.Done()
			if err := remove(); err != nil {
				r.log.Warn("cannot remove the compaction cache of an earlier run; it holds disk space until removed", "err", err)
			}
		}()
	}
	if o.Disabled || o.NoCache {
		cache.dir = "" // nothing would ever compact the copies away, or reading the store is as cheap
	}
	tmpDir := filepath.Join(r.stateDir, "tmp")
	for _, pattern := range []string{"compact-*", "fetch-*", "snapshot-*", "merge-*", "batch-*"} {
		//walfs:ignore-error Glob fails only on a malformed pattern, and these are constants
		leftovers, _ := filepath.Glob(filepath.Join(tmpDir, pattern)) // of a run that was killed
		for _, p := range leftovers {
			if err := os.Remove(p); err != nil {
				r.log.Warn("cannot remove a scratch file a killed run left; it holds disk space until removed", "err", err)
			}
		}
	}
	idx := newIndexStore(r.opts.Store, cache, time.Now)
	r.opts.Store = idx
	r.maint = &maintenance{
		opts: o, store: idx, cache: cache, tmpDir: tmpDir,
		log: r.log, dbs: map[string]*dbMaint{},
	}
}

// add registers db's maintenance. baseTXID is the TXID its transaction
// count starts from; snapshotLocal (nil in tests that drive the store
// directly) spools and uploads a snapshot of the local database for repairs.
func (m *maintenance) add(db string, baseTXID uint64, snapshotLocal func(ctx context.Context) (uint64, error)) *dbMaint {
	m.mu.Lock()
	defer m.mu.Unlock()
	dm := &dbMaint{
		m: m, db: db, log: m.log.With("db", db), errs: map[string]uint64{}, stuck: map[string]string{},
		baseTXID: baseTXID, snapshotLocal: snapshotLocal,
	}
	m.dbs[db] = dm
	return dm
}

func (m *maintenance) lookup(db string) *dbMaint {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dbs[db]
}

// dbMaint maintains the replica of one database. Its jobs run one at a time
// (step, on one scheduler goroutine at a time), so a compaction never reads
// a file retention is deleting.
type dbMaint struct {
	m   *maintenance
	db  string
	log *slog.Logger

	// compacted[l] is the highest TXID compacted into level l, so that
	// retention deleting level-l files never makes compaction redo them.
	compacted [s3backend.MaxCompactionLevel + 1]uint64

	// snapshotLocal spools a snapshot of the local database and waits for
	// its upload (DB.repairSnapshot); nil when there is no local database.
	snapshotLocal func(ctx context.Context) (uint64, error)
	repairMu      sync.Mutex // one repair at a time: the loop, sync and verify may each find a problem

	// Owned by step, which the scheduler runs on one goroutine at a time.
	plan     []job         // the jobs and when each runs next; nil until the index is seeded
	seedWait time.Duration // the wait after the last failed seed
	task     *task         // step's place in the maintenance scheduler

	mu         sync.Mutex // guards the fields below, which Status reads
	baseTXID   uint64     // highest TXID spooled when the loop started
	snapshots  uint64     // snapshots written by maintenance
	errs       map[string]uint64
	lastErr    error
	lastErrAt  time.Time
	floor      uint64            // TXID of the newest repairing snapshot (repair.go)
	repairs    uint64            // repairs since start
	lastRepair repairRecord      // zero when none
	stuck      map[string]string // job name -> why it gave up
}

// Kinds of maintenance errors.
const (
	errKindSeed       = "seed"
	errKindCompaction = "compaction"
	errKindSnapshot   = "snapshot"
	errKindRetention  = "retention"
)

// job is one scheduled piece of maintenance.
type job struct {
	kind     string // for error counts: compaction, snapshot, retention
	name     string // for status: "compaction into level 2"
	every    time.Duration
	run      func(ctx context.Context, now time.Time) error
	next     time.Time
	fails    int    // failures in a row
	repairs  int    // repairs its findings caused since it last ran clean
	parked   bool   // gave up after maxAttempts failures (repair.go)
	parkedAt uint64 // the replica's latest TXID when it gave up
}

// compactionJobNames name the compaction jobs, level by level, once for
// every database.
var compactionJobNames = func() (names [s3backend.MaxCompactionLevel]string) {
	for i := range names {
		names[i] = fmt.Sprintf("compaction into level %d", i+1)
	}
	return names
}()

func (dm *dbMaint) jobs() []job {
	o := dm.m.opts
	jobs := make([]job, 0, len(o.CompactionIntervals)+2) // one plan per database: no slack
	for i, every := range o.CompactionIntervals {
		level := i + 1
		jobs = append(jobs, job{kind: errKindCompaction, name: compactionJobNames[i], every: every,
			run: func(ctx context.Context, _ time.Time) error { return dm.compact(ctx, level) }})
	}
	if o.SnapshotInterval > 0 || o.SnapshotFactor > 0 {
		// Checked as often as level 1 is compacted: the check itself is free.
		jobs = append(jobs, job{kind: errKindSnapshot, name: "snapshot", every: o.CompactionIntervals[0], run: dm.snapshotIfDue})
	}
	if o.Retention > 0 {
		jobs = append(jobs, job{kind: errKindRetention, name: "retention", every: o.RetentionInterval, run: dm.retain})
	}
	return jobs
}

// maxBackoff bounds how far a failing job's next run is pushed out.
const maxBackoff = time.Hour

// step is the maintenance loop, one turn per call from the Replicator's
// maintenance scheduler (sched.go): it seeds the index (backing off while
// that fails), then runs the jobs that are due and says when the next one
// is. While nothing new reaches the replica, no job sends a request.
func (dm *dbMaint) step(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return idle
	}
	if dm.plan == nil {
		if err := dm.seed(ctx); err != nil {
			if ctx.Err() != nil {
				return idle
			}
			dm.failed(errKindSeed, err)
			dm.seedWait = min(max(2*dm.seedWait, time.Second), maxBackoff)
			return dm.seedWait
		}
		dm.plan = dm.jobs()
		now := time.Now()
		for i := range dm.plan {
			dm.plan[i].next = now.Add(dm.plan[i].every)
		}
	} else {
		dm.runDue(ctx, dm.plan, time.Now())
		if ctx.Err() != nil {
			return idle
		}
	}
	next := dm.plan[0].next
	for _, j := range dm.plan[1:] {
		if j.next.Before(next) {
			next = j.next
		}
	}
	return max(time.Until(next), 0)
}

// runDue runs, in order, every job whose time has come (runJob: repairs,
// backoff, parking).
func (dm *dbMaint) runDue(ctx context.Context, jobs []job, now time.Time) {
	for i := range jobs {
		j := &jobs[i]
		if now.Before(j.next) {
			continue
		}
		dm.runJob(ctx, j, now)
		if ctx.Err() != nil {
			return
		}
		j.next = now.Add(min(j.every<<min(j.fails, 5), max(j.every, maxBackoff)))
	}
}

// seed lists the levels no listing has seeded yet (normally none: resume
// listed them all to find the replica position).
func (dm *dbMaint) seed(ctx context.Context) error {
	for _, level := range dm.m.store.unseeded(dm.db) {
		if _, err := dm.m.store.List(ctx, dm.db, level); err != nil {
			return err
		}
	}
	return nil
}

// maintStatus is a copy of what a dbMaint shows in status.
type maintStatus struct {
	baseTXID   uint64
	snapshots  uint64
	errs       map[string]uint64
	lastErr    error
	lastErrAt  time.Time
	repairs    uint64
	lastRepair repairRecord
	stuck      []string // why each stuck job gave up, sorted; nil when none
}

// status returns what status shows of dm.
func (dm *dbMaint) status() maintStatus {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	s := maintStatus{
		baseTXID: dm.baseTXID, snapshots: dm.snapshots, errs: maps.Clone(dm.errs),
		lastErr: dm.lastErr, lastErrAt: dm.lastErrAt, repairs: dm.repairs, lastRepair: dm.lastRepair,
	}
	for _, why := range dm.stuck {
		s.stuck = append(s.stuck, why)
	}
	slices.Sort(s.stuck)
	return s
}

func (dm *dbMaint) failed(kind string, err error) {
	dm.log.Error("replica maintenance failed; will retry", "job", kind, "err", err)
	dm.mu.Lock()
	defer dm.mu.Unlock()
	dm.errs[kind]++
	dm.lastErr, dm.lastErrAt = err, time.Now()
}
