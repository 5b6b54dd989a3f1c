package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// AllOptions tunes RestoreAll.
type AllOptions struct {
	// Options applies to every database. Target.TXID must be zero: TXIDs
	// are per database. A timestamp restores every database as it was then.
	Options
	// RootName names the output of a database stored at the root of st
	// (db ""), which happens when the URL names one database.
	RootName string
	// IfNotExists leaves databases whose output exists alone (reported as
	// skipped), so an interrupted RestoreAll can be run again.
	IfNotExists bool
	// DryRun plans every database and downloads nothing.
	DryRun bool
	// Started, if set, is called before each database is planned.
	Started func(db, out string)
}

// DBResult is what RestoreAll did with one database.
type DBResult struct {
	DB      string  // path in the replica ("" for the root)
	Output  string  // where it was (or would be) restored
	Plan    *Plan   // set when planning succeeded
	Result  *Result // set when the restore succeeded
	Skipped string  // why the database was left alone; "" otherwise
	Err     error   // why it failed; nil otherwise
}

// Status is "restored", "planned", "skipped" or "failed".
func (r DBResult) Status() string {
	switch {
	case r.Err != nil:
		return "failed"
	case r.Skipped != "":
		return "skipped"
	case r.Result != nil:
		return "restored"
	default:
		return "planned"
	}
}

// ErrSomeFailed is returned by RestoreAll when at least one database failed.
var ErrSomeFailed = errors.New("some databases failed to restore")

// RestoreAll restores every database in st into the directory tree dir, each
// at dir/<its path in the replica> (directories it creates are 0700, new
// databases 0600, like Restore), one after another, with the same
// planning, verification and all-or-nothing installation as Restore. A
// failed database does not stop the others; RestoreAll then returns the
// results and an error matching ErrSomeFailed. With a timestamp target, a
// database with nothing committed at or before it (created later, or its
// history pruned) is skipped. Listing errors and cancellation stop the run.
func RestoreAll(ctx context.Context, st s3backend.Store, dir string, opts AllOptions) ([]DBResult, error) {
	if opts.Target.TXID != 0 {
		return nil, errors.New("restore all: a TXID target names one database's transaction; use a timestamp")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dbs, err := st.ListDatabases(ctx)
	if err != nil {
		return nil, err // the store names itself
	}
	if len(dbs) == 0 {
		return nil, withHint(fmt.Errorf("restore all from %s: %w", st, ErrNoBackups),
			"check the replica URL: it must name the replica root (the --replica of the mount)")
	}
	if !opts.DryRun {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, withHint(fmt.Errorf("restore all: create %s: %w", dir, err), "check the directory's parent is writable")
		}
	}

	results := make([]DBResult, 0, len(dbs))
	failed := 0
	for _, db := range dbs {
		r := restoreOne(ctx, st, dir, db, opts)
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("restore all: %w", err)
		}
		if r.Err != nil {
			failed++
			opts.Logger.Error("restore failed", "db", db, "err", r.Err)
		}
		results = append(results, r)
	}
	if failed > 0 {
		return results, fmt.Errorf("restore all from %s: %w: %d of %d", st, ErrSomeFailed, failed, len(dbs))
	}
	return results, nil
}

// restoreOne plans and restores one database of RestoreAll.
func restoreOne(ctx context.Context, st s3backend.Store, dir, db string, opts AllOptions) DBResult {
	r := DBResult{DB: db}
	name := db
	if name == "" {
		name = opts.RootName
	}
	rel := filepath.FromSlash(name)
	if name == "" || !filepath.IsLocal(rel) {
		r.Err = withHint(fmt.Errorf("restore %s: cannot place it under %s", dbName(db), dir),
			"restore this database on its own with walfs restore -o PATH URL_OF_DB")
		return r
	}
	r.Output = filepath.Join(dir, rel)
	if opts.Started != nil {
		opts.Started(db, r.Output)
	}
	if opts.IfNotExists && !opts.DryRun {
		if _, err := os.Lstat(r.Output); err == nil {
			r.Skipped = "output exists"
			return r
		}
	}
	skipUnborn := func(err error) bool {
		if opts.Target.Timestamp.IsZero() || !errors.Is(err, ErrNoSnapshot) {
			return false
		}
		r.Skipped = "nothing committed at or before " + opts.Target.Timestamp.UTC().Format(time.RFC3339)
		return true
	}

	if opts.DryRun {
		r.Plan, r.Err = MakePlan(ctx, st, db, opts.Target)
		if skipUnborn(r.Err) {
			r.Err = nil
		}
		return r
	}
	if err := os.MkdirAll(filepath.Dir(r.Output), 0o700); err != nil {
		r.Err = withHint(fmt.Errorf("restore %s: create %s: %w", dbName(db), filepath.Dir(r.Output), err),
			"a file may be in the way of the database's directory")
		return r
	}
	res, err := Restore(ctx, st, db, r.Output, opts.Options)
	switch {
	case skipUnborn(err):
	case err != nil:
		r.Err = err
	default:
		r.Result, r.Plan = res, res.Plan
	}
	return r
}
