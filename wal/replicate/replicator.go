package replicate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal"
)

// StateDirName is the directory inside the data dir that holds the spool,
// positions and control socket (wal.StateDirName, the one definition).
const StateDirName = wal.StateDirName

// Options configure a Replicator.
type Options struct {
	DataDir      string          // backing directory of the mount
	Store        s3backend.Store // where LTX files go
	SyncInterval time.Duration   // at most one level-0 upload per interval per database
	Logger       *slog.Logger
	// Durability is DurabilityAsync (commits return at local speed) or
	// DurabilitySync (a commit returns only once the store holds it).
	Durability Durability
	// Capture is CaptureUserspace (default) or CapturePassthrough.
	Capture CaptureMode
	// SyncTimeout bounds how long a sync-durability commit waits for the
	// store before it fails.
	SyncTimeout time.Duration
	// Restore rebuilds db from the store into path and returns the position
	// it landed on. Start calls it for databases the replica has and the
	// data dir lacks. Nil disables auto-restore.
	Restore func(ctx context.Context, db, path string) (Pos, error)
	// Maintenance schedules compaction, snapshots and retention (maintain.go).
	Maintenance MaintenanceOptions
	// Uploaded, if set, is called after each level-0 file or snapshot the
	// uploader put in the store, with the info the store returned (Size
	// set) and the position it brought db to, once that position is saved.
	// It runs on the uploader's goroutine: it must return at once (record
	// and wake, never wait for the store). Uploads of a database deleted
	// meanwhile are not reported.
	Uploaded func(db string, info s3backend.FileInfo, pos Pos)
	// Removed, if set, is called when a database is deleted or renamed away
	// and what it spooled is dropped: the replica keeps what it holds, but
	// the database is gone. Same rules as Uploaded.
	Removed func(db string)
}

// Durability says when SQLite's commit may return.
type Durability string

// Durability modes.
const (
	DurabilityAsync Durability = "async"
	DurabilitySync  Durability = "sync"
)

// ParseDurability parses async or sync.
func ParseDurability(s string) (Durability, error) {
	switch d := Durability(strings.ToLower(strings.TrimSpace(s))); d {
	case DurabilityAsync, DurabilitySync:
		return d, nil
	}
	return "", fmt.Errorf("durability %q: want async or sync", s)
}

// Replicator tracks every database in a data dir. It implements
// fusefs.Capturer by routing each event to the database's DB. It owns the
// set of databases and the goroutines it starts (doc.go); each database's
// state belongs to its DB, spoolWriter, uploader and dbMaint.
type Replicator struct {
	opts     Options
	stateDir string
	log      *slog.Logger

	watch *watcher // passthrough mode only

	// mu guards the maps and closed, and only them: it is never held
	// across I/O or while taking another lock (doc.go).
	mu         sync.Mutex
	dbs        map[string]*DB
	opening    map[string]*opening // databases being opened (open)
	direct     map[string]int      // database path -> open handles the kernel serves alone (DBPassthrough)
	directSeen map[string]bool     // databases DBPassthrough was logged for
	closed     bool                // Close began: open starts no more goroutines

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Replicator started
	maint  *maintenance   // compaction, snapshots, retention (maintain.go)
	// uploads and maintSched run every database's uploader and maintenance
	// steps on a few goroutines (sched.go): a quiet database has none.
	uploads    *sched
	maintSched *sched
	resumed    chan struct{}         // closed once Start's background resumes are done
	sus        suspects              // databases written outside SQLite's protocol (reconcile.go)
	locks      atomic.Pointer[Locks] // the mount's (reconcile.go)
}

// New returns a Replicator; call Start before mounting.
func New(opts Options) (*Replicator, error) {
	if opts.Store == nil {
		return nil, errors.New("replicate: no store")
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch opts.Durability {
	case "":
		opts.Durability = DurabilityAsync
	case DurabilityAsync, DurabilitySync:
	default:
		return nil, fmt.Errorf("durability %q: want async or sync", opts.Durability)
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 10 * time.Second
	}
	switch opts.Capture {
	case "":
		opts.Capture = CaptureUserspace
	case CaptureUserspace, CapturePassthrough:
	default:
		return nil, fmt.Errorf("capture %q: want userspace or passthrough", opts.Capture)
	}
	if opts.Capture == CapturePassthrough && opts.Durability == DurabilitySync {
		return nil, errors.New("durability sync needs the userspace capture path (use --capture userspace or auto)")
	}
	r := &Replicator{
		opts:       opts,
		stateDir:   filepath.Join(opts.DataDir, StateDirName),
		log:        opts.Logger.With("component", "replicate"),
		dbs:        make(map[string]*DB),
		opening:    make(map[string]*opening),
		direct:     make(map[string]int),
		directSeen: make(map[string]bool),
		sus:        suspects{wake: make(chan struct{}, 1)},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.uploads = newSched(r.ctx, uploadWorkers)
	r.maintSched = newSched(r.ctx, maintWorkers)
	r.resumed = make(chan struct{})
	r.initMaintenance()
	if opts.Capture == CapturePassthrough {
		w, err := newWatcher()
		if err != nil {
			return nil, fmt.Errorf("inotify for passthrough capture: %w", err)
		}
		r.watch = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			w.run(r.walChanged)
		}()
	}
	return r, nil
}

// StateDir is the directory holding walfs's local state.
func (r *Replicator) StateDir() string { return r.stateDir }

// How many uploads and maintenance jobs run at once, over all databases,
// and how many databases Start resumes at once behind the mount.
const (
	uploadWorkers = 32
	maintWorkers  = 4
	resumeWorkers = 4
)

// Start restores databases that only the replica has and then returns:
// taking stock of the local ones (resuming their spools, snapshotting where
// local and replica disagree) goes on behind it, a few at a time (resumeAll),
// so a mount over thousands of databases appears at once. A request for a
// database not resumed yet resumes it first (open).
func (r *Replicator) Start(ctx context.Context) error {
	if err := MakeStateDir(r.stateDir); err != nil {
		return err
	}
	if err := r.opts.Store.Init(ctx); err != nil {
		return err
	}
	remote, err := r.opts.Store.ListDatabases(ctx)
	if err != nil {
		return fmt.Errorf("list databases in %s: %w", r.opts.Store, err)
	}
	local, err := r.localDatabases()
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(local))
	for _, db := range local {
		known[db] = true
	}
	for _, db := range remote {
		if known[db] || r.opts.Restore == nil {
			continue
		}
		path := filepath.Join(r.opts.DataDir, filepath.FromSlash(db))
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if leftover := leftoverOf(path); leftover != "" {
			// The database was deleted here and a file of it left behind,
			// which SQLite would play over a restored copy: this is not a
			// new machine. Restoring is the user's call.
			r.log.Warn("not restoring a database deleted from the data dir: a file of it is left", "db", db, "file", leftover, "hint", "remove it to have the mount restore the database, or restore with walfs restore")
			continue
		}
		r.log.Info("restoring database from replica", "db", db)
		// The replica keeps no directory modes; private, like restore --all.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("restore %s: %w", db, err)
		}
		if _, err := r.opts.Restore(ctx, db, path); err != nil {
			return fmt.Errorf("restore %s from %s: %w", db, r.opts.Store, err)
		}
		local = append(local, db)
	}
	sort.Strings(local)
	ops := make([]*opening, len(local))
	r.mu.Lock()
	for i, db := range local {
		ops[i] = &opening{done: make(chan struct{}), atStart: true}
		r.opening[db] = ops[i]
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		r.resumeAll(local, ops)
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.reconcileLoop(r.ctx)
	}()
	return nil
}

// leftoverOf names a -journal or -wal of the database at path that exists
// without it, or returns "".
func leftoverOf(path string) string {
	for _, sfx := range []string{"-journal", "-wal"} {
		if _, err := os.Lstat(path + sfx); err == nil {
			return filepath.Base(path + sfx)
		}
	}
	return ""
}

// localDatabases finds the SQLite databases in the data dir, in any journal
// mode.
func (r *Replicator) localDatabases() ([]string, error) {
	return localDatabases(r.opts.DataDir)
}

// localDatabases finds the SQLite databases in dataDir, outside its state
// dir, as slash paths relative to it.
func localDatabases(dataDir string) ([]string, error) {
	stateDir := filepath.Join(dataDir, StateDirName)
	var out []string
	err := filepath.WalkDir(dataDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if p == stateDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() || strings.HasSuffix(p, "-wal") || strings.HasSuffix(p, "-shm") || strings.HasSuffix(p, "-journal") {
			return nil
		}
		if isDatabase(p) {
			rel, err := filepath.Rel(dataDir, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan data dir %s: %w", dataDir, err)
	}
	return out, nil
}

// isDatabase reports whether path starts like a SQLite database.
func isDatabase(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close() // read only
	var hdr [16]byte
	// A file that cannot be read is not taken for a database: Start restores
	// nothing over it (only where no file is), and a write through the
	// mount opens it as any database.
	n, _ := f.Read(hdr[:]) //walfs:ignore-error an unreadable file is not taken for a database (above)
	return wal.IsDBHeader(hdr[:n])
}

// resumeAll resumes the databases Start found, resumeWorkers at a time,
// each unless a request claimed it first, and closes r.resumed.
func (r *Replicator) resumeAll(dbs []string, ops []*opening) {
	defer close(r.resumed)
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range min(resumeWorkers, len(dbs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if _, err := r.run(r.ctx, dbs[i], ops[i]); err != nil && !errors.Is(err, errClosed) && r.ctx.Err() == nil {
					failed.Add(1)
					r.log.Error("cannot resume database; its first request tries again", "db", dbs[i], "err", err)
				}
			}
		}()
	}
	for i := range dbs {
		if r.ctx.Err() != nil {
			// Close began: what is not resumed stays on disk for the next Start.
			r.abandon(dbs[i], ops[i])
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if len(dbs) > 0 {
		r.log.Info("databases resumed", "databases", len(dbs), "failed", failed.Load(), "took", time.Since(start).Round(time.Millisecond))
	}
}

// abandon ends op unrun (Close began), unless a request claimed it.
func (r *Replicator) abandon(rel string, op *opening) {
	r.mu.Lock()
	claimed := op.claimed
	op.claimed = true
	if !claimed {
		delete(r.opening, rel)
	}
	r.mu.Unlock()
	if !claimed {
		op.err = errClosed
		close(op.done)
	}
}

// WaitResumed waits until the databases Start found are resumed (or ctx
// ends): Flush, Verify and Compare cover them only then.
func (r *Replicator) WaitResumed(ctx context.Context) error {
	select {
	case <-r.resumed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for databases to resume: %w", ctx.Err())
	}
}

// opening is a database being opened. Opening may list the store (resume),
// so it runs without r.mu: other databases' requests and Status never wait
// for it, and concurrent requests for the same database wait on done. The
// databases Start finds get an opening each at once, run in the background
// (resumeAll) unless a request claims one first and runs it itself.
type opening struct {
	done    chan struct{} // closed once d or err is set
	atStart bool          // found by Start: load the WAL as it was then, and check the lineage
	claimed bool          // someone runs it; guarded by Replicator.mu
	d       *DB
	err     error
}

// errClosed is returned by open once Close has begun.
var errClosed = errors.New("replicator closed")

// open returns the DB for rel, creating it on first use. atStart loads an
// existing WAL right away (no app has it open yet).
func (r *Replicator) open(ctx context.Context, rel string, atStart bool) (*DB, error) {
	r.mu.Lock()
	if d, ok := r.dbs[rel]; ok {
		r.mu.Unlock()
		return d, nil
	}
	if op, ok := r.opening[rel]; ok {
		if !op.claimed {
			// Found by Start and not resumed yet: this request resumes it.
			r.mu.Unlock()
			return r.run(ctx, rel, op)
		}
		r.mu.Unlock()
		select {
		case <-op.done:
			return op.d, op.err
		case <-ctx.Done():
			return nil, fmt.Errorf("open %s: %w", rel, ctx.Err())
		}
	}
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	op := &opening{done: make(chan struct{}), atStart: atStart}
	r.opening[rel] = op
	r.mu.Unlock()
	return r.run(ctx, rel, op)
}

// run opens rel for op unless someone else claimed op first, in which case
// it waits for them.
func (r *Replicator) run(ctx context.Context, rel string, op *opening) (*DB, error) {
	r.mu.Lock()
	claimed := op.claimed
	op.claimed = true
	r.mu.Unlock()
	if claimed {
		select {
		case <-op.done:
			return op.d, op.err
		case <-ctx.Done():
			return nil, fmt.Errorf("open %s: %w", rel, ctx.Err())
		}
	}
	defer close(op.done)
	op.d, op.err = r.start(ctx, rel, op.atStart)
	if op.err == nil && op.atStart {
		_, op.err = r.checkLineage(ctx, op.d)
	}
	return op.d, op.err
}

// start opens database rel (resume) and starts its uploader and
// maintenance. It removes rel's opening entry, and registers the DB if it
// opened and Close has not begun.
func (r *Replicator) start(ctx context.Context, rel string, atStart bool) (*DB, error) {
	d := r.newDB(rel)
	err := d.resume(ctx, atStart)
	var dm *dbMaint
	if err == nil {
		dm = r.maint.add(rel, d.up.Status().Last, d.repairSnapshot)
		d.up.sched, d.up.task = r.uploads, r.uploads.newTask(d.up.step)
		if !r.maint.opts.Disabled {
			dm.task = r.maintSched.newTask(dm.step)
		}
	}
	r.mu.Lock()
	delete(r.opening, rel)
	closed := r.closed
	if err == nil && !closed {
		r.dbs[rel] = d
	}
	r.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case closed:
		// What resume spooled stays on disk for the next Start.
		return nil, errors.Join(errClosed, d.syncSpool())
	}
	d.up.kick() // in case the spool has work
	r.maintSched.wake(dm.task)
	return d, nil
}

// newDB wires the capture, spool writer and uploader of database rel.
func (r *Replicator) newDB(rel string) *DB {
	log := r.log.With("db", rel)
	sw := newSpoolWriter(spool{dir: filepath.Join(r.stateDir, "spool", filepath.FromSlash(rel))}, rel)
	cfg := uploaderConfig{
		rel: rel, log: log, store: r.opts.Store, stateDir: r.stateDir, interval: r.opts.SyncInterval,
	}
	if f := r.opts.Uploaded; f != nil {
		cfg.onUpload = func(info s3backend.FileInfo, pos Pos) { f(rel, info, pos) }
	}
	up := newUploader(cfg, sw)
	env := dbEnv{
		capture: r.opts.Capture, durability: r.opts.Durability, syncTimeout: r.opts.SyncTimeout,
		life: r.ctx, watch: r.watch, untracked: r.untracked, removed: r.opts.Removed,
	}
	return newDB(rel, r.pathOf(rel), log, env, sw, up)
}

// get returns the DB for rel, opening it if needed (from FUSE requests).
func (r *Replicator) get(rel string) (*DB, error) {
	r.mu.Lock()
	d, ok := r.dbs[rel]
	r.mu.Unlock()
	if ok {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	return r.open(ctx, rel, false)
}

// lookup returns the DB for rel if it is tracked. A database Start found
// and has not resumed yet is tracked: lookup resumes it first (or waits
// for the resume under way), so a write to it is seen by a resumed DB.
// It serves events that cannot fail (Removed, DBPassthrough, the watcher)
// and logs a failed resume; requests that can fail use find.
func (r *Replicator) lookup(rel string) *DB {
	d, err := r.find(rel)
	if err != nil {
		r.log.Error("cannot resume database", "db", rel, "err", err)
	}
	return d
}

// find is lookup for requests that can fail: a database Start found and
// could not resume is an error, not "untracked" (its writes would go
// unrecorded, and a later commit would miss their pages).
func (r *Replicator) find(rel string) (*DB, error) {
	r.mu.Lock()
	d, op := r.dbs[rel], r.opening[rel]
	r.mu.Unlock()
	if d != nil || op == nil || !op.atStart {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	d, err := r.run(ctx, rel, op)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", rel, err)
	}
	return d, nil
}

func (r *Replicator) all() []*DB {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*DB, 0, len(r.dbs))
	for _, d := range r.dbs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// Close stops every goroutine the Replicator started (uploaders,
// maintenance, the reconciler, the watcher) and waits for them, without
// flushing. Spooled transactions stay on
// disk and are uploaded by the next Start.
func (r *Replicator) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	if r.watch != nil {
		r.watch.stop()
	}
	r.uploads.close()
	r.maintSched.close()
	r.wg.Wait()
	if r.watch != nil {
		r.watch.close() // run has returned: no one polls its descriptors
	}
	var errs []error
	for _, d := range r.all() {
		if err := d.syncSpool(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// walChanged is called by the watcher when a backing -wal file changed.
func (r *Replicator) walChanged(walPath string) {
	rel, err := filepath.Rel(r.opts.DataDir, strings.TrimSuffix(walPath, "-wal"))
	if err != nil {
		return
	}
	d := r.lookup(filepath.ToSlash(rel))
	if d == nil {
		return
	}
	if err := d.pollWoken(); err != nil {
		d.log.Error("capture failed; the next checkpoint retries it", "err", err)
	}
}
