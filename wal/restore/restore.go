package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/superfly/ltx"
	"github.com/walfs/walfs/s3backend"
)

// Options tunes Restore. The zero value restores the latest state with a
// quick check, four downloads at a time, refusing to overwrite.
type Options struct {
	Target         Target
	IntegrityCheck string // IntegrityNone, IntegrityQuick (default) or IntegrityFull
	Force          bool   // overwrite an existing output (and remove its -wal, -shm, -journal)
	Parallelism    int    // objects downloaded at once, and ranged GETs for one large object (default 4)
	Logger         *slog.Logger
	Progress       func(Progress) // optional; called as bytes arrive, never concurrently
}

// DefaultParallelism is the number of concurrent downloads when
// Options.Parallelism is zero.
const DefaultParallelism = 4

// Result describes a finished restore.
type Result struct {
	Plan     *Plan
	Checksum uint64        // LTX database checksum of the restored file
	Verified bool          // Checksum equals the last file's post-apply checksum
	Duration time.Duration // wall time of the whole restore
}

// sidecars are the files SQLite keeps beside a database. A stale -wal or
// -journal next to the output would be replayed over the restored database.
var sidecars = []string{"-wal", "-journal", "-shm"}

// Restore rebuilds db from st at opts.Target into outPath. It plans (see
// MakePlan), downloads the planned objects in parallel into
// "<outPath>.walfs-restore/", applies them in TXID order to "<outPath>.tmp"
// (each while it is still arriving), verifies checksums and SQLite integrity
// while fsyncing, then renames the result into place and fsyncs the
// directory. On any failure nothing is left at
// "<outPath>.tmp" or in the download directory, and outPath is untouched;
// errors about an object name its key. The restored file has the replaced
// file's permissions, else 0600; the download directory is 0700 and every
// file is 0600 while it is being built.
func Restore(ctx context.Context, st s3backend.Store, db, outPath string, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.IntegrityCheck == "" {
		opts.IntegrityCheck = IntegrityQuick
	}
	switch opts.IntegrityCheck {
	case IntegrityNone, IntegrityQuick, IntegrityFull:
	default:
		return nil, fmt.Errorf("restore: unknown integrity check %q (want none, quick or full)", opts.IntegrityCheck)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	outPath = filepath.Clean(outPath)
	mode, err := checkOutput(outPath, opts.Force)
	if err != nil {
		return nil, err
	}

	plan, err := MakePlan(ctx, st, db, opts.Target)
	if err != nil {
		return nil, err
	}
	opts.Logger.Info("restore plan", "db", db, "txid", plan.TXID, "files", len(plan.Files), "bytes", plan.Bytes)

	r := &run{
		st: st, plan: plan, opts: opts,
		out: outPath, tmp: outPath + ".tmp", dir: outPath + ".walfs-restore",
	}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	sum, verified, err := r.build(ctx, mode)
	if err == nil {
		err = r.install()
	}
	if err != nil {
		if derr := r.discard(); derr != nil {
			return nil, fmt.Errorf("%w (and removing its temporary files failed: %v)", err, derr)
		}
		return nil, err
	}
	res := &Result{Plan: plan, Checksum: uint64(sum), Verified: verified, Duration: time.Since(start)}
	opts.Logger.Info("restored", "db", db, "out", outPath, "txid", plan.TXID,
		"checksum", sum.String(), "verified", verified, "duration", res.Duration.Round(time.Millisecond))
	return res, nil
}

// checkOutput refuses an existing output (or -wal/-journal beside it) unless
// force is set, and anything but a regular file even then. It returns the
// permissions to give the restored file: the replaced file's, else 0600 (a
// database is private until its owner shares it; the mode is explicit because
// a mount restores with umask 0).
func checkOutput(out string, force bool) (fs.FileMode, error) {
	mode := fs.FileMode(0o600)
	fi, err := os.Lstat(out)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return 0, withHint(fmt.Errorf("restore to %s: %w and is not a regular file", out, ErrOutputExists),
			"choose another output path with -o")
	case err == nil && !force:
		return 0, withHint(fmt.Errorf("restore to %s: %w", out, ErrOutputExists), hintOutputExists)
	case err == nil:
		mode = fi.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("restore to %s: %w", out, err)
	}
	if !force {
		for _, s := range sidecars[:2] {
			if _, err := os.Lstat(out + s); err == nil {
				return 0, withHint(fmt.Errorf("restore to %s: %w: %s exists and SQLite would replay it over the restored database",
					out, ErrOutputExists, out+s), "remove it, or use --force to replace it")
			}
		}
	}
	return mode, nil
}

// run is one restore in progress.
type run struct {
	st   s3backend.Store
	plan *Plan
	opts Options
	out  string // final path
	tmp  string // database being built
	dir  string // downloaded objects
}

// prepare clears leftovers of an interrupted restore to the same output and
// creates the download directory.
func (r *run) prepare() error {
	if err := r.discard(); err != nil {
		return withHint(fmt.Errorf("restore: clear leftovers of an earlier restore: %w", err),
			"remove them, or check that the output's directory is writable")
	}
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		return withHint(fmt.Errorf("restore: create download directory: %w", err),
			"check that the output's directory exists and is writable")
	}
	return nil
}

// discard removes everything the restore created except the output.
func (r *run) discard() error {
	errs := []error{os.RemoveAll(r.dir)}
	for _, s := range append([]string{""}, sidecars...) {
		if err := os.Remove(r.tmp + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// build downloads and applies the plan into r.tmp, checks it, gives it mode
// and syncs it.
func (r *run) build(ctx context.Context, mode fs.FileMode) (ltx.Checksum, bool, error) {
	f, err := os.OpenFile(r.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, false, withHint(fmt.Errorf("restore: create %s: %w", r.tmp, err),
			"check that the output's directory is writable")
	}
	defer f.Close()

	last, err := r.fetchAndApply(ctx, f)
	if err != nil {
		return 0, false, err
	}
	// Chmod, unlike the create mode, ignores the umask, and the sync in
	// verify makes it durable with the pages.
	if err := f.Chmod(mode); err != nil {
		return 0, false, fmt.Errorf("restore: chmod %s: %w", r.tmp, err)
	}
	lastInfo := r.plan.Files[len(r.plan.Files)-1]
	c, err := verify(ctx, f, r.tmp, last.header.PageSize, last.header.Commit, r.opts.IntegrityCheck)
	if err != nil {
		return 0, false, err
	}
	r.opts.Logger.Debug("verified", "checksum_took", c.sumTook.Round(time.Millisecond),
		"integrity_check_took", c.integrityTook.Round(time.Millisecond), "sync_took", c.syncTook.Round(time.Millisecond))
	verified := !last.header.NoChecksum()
	if verified && c.sum != last.trailer.PostApplyChecksum {
		return 0, false, withHint(objectErr("verify", lastInfo, fmt.Errorf(
			"%w: rebuilt database has checksum %s, the file's post-apply checksum is %s",
			ErrChecksumMismatch, c.sum, last.trailer.PostApplyChecksum)), hintChecksum)
	}
	if c.integrity != nil {
		return 0, false, withHint(fmt.Errorf("restore %s at TXID %d: %w", dbName(r.plan.DB), r.plan.TXID, c.integrity),
			"the replica holds a damaged database at this point; restore an earlier point with --txid/--timestamp")
	}
	if c.sync != nil {
		return 0, false, fmt.Errorf("restore: sync %s: %w", r.tmp, c.sync)
	}
	if err := f.Close(); err != nil {
		return 0, false, fmt.Errorf("restore: close %s: %w", r.tmp, err)
	}
	return c.sum, verified, nil
}

// install moves r.tmp into place: with Force, stale sidecars of the replaced
// database go first (SQLite would replay them), then the rename, then the
// directory sync. (Without Force, checkOutput found no -wal or -journal; a
// stale -shm is harmless, SQLite rebuilds it.)
func (r *run) install() error {
	for _, s := range sidecars {
		if !r.opts.Force {
			break
		}
		if err := os.Remove(r.out + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore: remove stale %s: %w", r.out+s, err)
		}
	}
	if err := r.move(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(r.out)); err != nil {
		return fmt.Errorf("restore: sync directory of %s: %w", r.out, err)
	}
	return os.RemoveAll(r.dir)
}

// move renames r.tmp to r.out. Without Force it links first, which fails
// if r.out appeared since checkOutput, so nothing is ever overwritten; file
// systems without hard links fall back to a checked rename.
func (r *run) move() error {
	if !r.opts.Force {
		err := os.Link(r.tmp, r.out)
		switch {
		case err == nil:
			if err := os.Remove(r.tmp); err != nil {
				return fmt.Errorf("restore: remove %s: %w", r.tmp, err)
			}
			return nil
		case errors.Is(err, fs.ErrExist):
			return withHint(fmt.Errorf("restore to %s: %w (created while restoring)", r.out, ErrOutputExists), hintOutputExists)
		}
		if _, err := os.Lstat(r.out); err == nil {
			return withHint(fmt.Errorf("restore to %s: %w (created while restoring)", r.out, ErrOutputExists), hintOutputExists)
		}
	}
	if err := os.Rename(r.tmp, r.out); err != nil {
		return fmt.Errorf("restore: rename %s to %s: %w", r.tmp, r.out, err)
	}
	return nil
}

// fetchAndApply downloads the plan's files with bounded parallelism and
// look-ahead and applies each to f in order as soon as it has arrived,
// deleting it once applied. It returns what the last file held.
func (r *run) fetchAndApply(ctx context.Context, f *os.File) (applied, error) {
	files := r.plan.Files
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	dl := &downloader{
		st: r.st, dir: r.dir, logger: r.opts.Logger,
		progress: &progressTracker{p: Progress{Files: len(files), Bytes: r.plan.Bytes}, fn: r.opts.Progress},
	}
	ready := make([]chan *object, len(files))
	for i := range ready {
		ready[i] = make(chan *object, 1)
	}
	// window bounds the files downloaded but not yet applied, so disk use
	// stays near the largest few files rather than the whole plan.
	window := make(chan struct{}, 2*r.opts.Parallelism)
	jobs := make(chan int)
	wg.Go(func() {
		defer close(jobs)
		for i := range files {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	split := partSize
	if r.opts.Parallelism == 1 {
		split = 0 // one GET per object
	}
	for range min(r.opts.Parallelism, len(files)) {
		wg.Go(func() {
			for i := range jobs {
				o := newObject(files[i], r.dir, split)
				f, err := dl.create(o)
				ready[i] <- o // the applier may follow the file as it grows
				if err == nil {
					dl.fetch(ctx, o, f, r.opts.Parallelism)
				}
			}
		})
	}

	a := applier{db: f, posts: map[uint64]postApply{}}
	var last applied
	for i, info := range files {
		var o *object
		select {
		case o = <-ready[i]:
		case <-ctx.Done():
			return applied{}, fmt.Errorf("restore: %w", ctx.Err())
		}
		var err error
		if last, err = r.applyObject(ctx, &a, o); err != nil {
			return applied{}, err
		}
		<-window
		r.opts.Logger.Debug("applied", "key", s3backend.Key(info), "pages", last.pages, "commit", last.header.Commit)
	}
	return last, nil
}

// applyObject applies o while it downloads, then checks the download ended
// well and removes its temporary file. A failed download is reported as
// such, not as the damaged file the decoder saw.
func (r *run) applyObject(ctx context.Context, a *applier, o *object) (applied, error) {
	if err := o.failed(); err != nil {
		return applied{}, err
	}
	src, err := o.reader()
	if err != nil {
		return applied{}, err
	}
	got, err := a.apply(src, o.info)
	err = errors.Join(err, src.Close())
	if derr := o.failed(); derr != nil {
		return applied{}, derr
	} else if err != nil {
		return applied{}, err
	}
	if err := o.wait(); err != nil {
		return applied{}, err
	}
	if err := ctx.Err(); err != nil {
		return applied{}, fmt.Errorf("restore: %w", err)
	}
	if err := os.Remove(o.path); err != nil {
		return applied{}, fmt.Errorf("restore: remove %s: %w", o.path, err)
	}
	return got, nil
}

// postApply is the tracked checksum after one applied file.
type postApply struct {
	sum ltx.Checksum
	key string
}

// applier applies files in order and checks the checksum chain.
type applier struct {
	db       *os.File
	pageSize uint32
	posts    map[uint64]postApply // by MaxTXID of applied files that track checksums
}

func (a *applier) apply(src io.Reader, info s3backend.FileInfo) (applied, error) {
	got, err := applyLTX(src, a.db, expect{pageSize: a.pageSize, minTXID: info.MinTXID, maxTXID: info.MaxTXID})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return applied{}, withHint(objectErr("apply", info, err), hintCorrupt)
		}
		return applied{}, objectErr("apply", info, err)
	}
	hdr := got.header
	a.pageSize = hdr.PageSize
	if hdr.NoChecksum() {
		return got, nil
	}
	// Files may overlap the chain (a compaction starting before the current
	// TXID), so compare with the position the file claims to start from
	// whenever an applied file ended exactly there.
	if prev, ok := a.posts[uint64(hdr.MinTXID)-1]; ok && !hdr.IsSnapshot() && prev.sum != hdr.PreApplyChecksum {
		return applied{}, withHint(objectErr("verify", info, fmt.Errorf(
			"%w: pre-apply checksum %s does not match the post-apply checksum %s of %s",
			ErrChecksumMismatch, hdr.PreApplyChecksum, prev.sum, prev.key)), hintChecksum)
	}
	a.posts[uint64(hdr.MaxTXID)] = postApply{sum: got.trailer.PostApplyChecksum, key: s3backend.Key(info)}
	return got, nil
}

// syncDir fsyncs a directory so a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
