package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
	"github.com/walfs/walfs/wal/replicate"
)

// setAsideFenced runs when a primary finds the replica's lease held by
// another walfs at start: most often a standby took over while this one was
// down. Databases of the data dir that the replica no longer describes —
// their spool holds transactions never uploaded, or the replica moved past
// the last position this data dir uploaded — are moved, with their spool
// and position, to <state dir>/fenced/<time>/, so nothing is lost and no
// later mount of this data dir uploads a history that diverged from the new
// primary's. It returns held with what it kept aside added, still one line.
func setAsideFenced(ctx context.Context, dataDir string, store s3backend.Store, held *lease.HeldError) error {
	stateDir := filepath.Join(dataDir, fusefs.StateDirName)
	dbs, err := trackedDatabases(stateDir)
	if err != nil {
		return errors.Join(held, err)
	}
	dest := filepath.Join(stateDir, "fenced", time.Now().UTC().Format("20060102T150405Z"))
	var moved []string
	var errs []error
	for _, db := range dbs {
		pending := spoolHolds(filepath.Join(stateDir, "spool", filepath.FromSlash(db)))
		if !pending {
			saved, err := replicate.SavedPos(dataDir, db)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			remote, err := replicaTXID(ctx, store, db)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if remote <= saved.TXID {
				continue
			}
		}
		if err := moveAside(dataDir, stateDir, dest, db); err != nil {
			errs = append(errs, err)
			continue
		}
		what := db
		if pending {
			what += " (with commits never uploaded)"
		}
		moved = append(moved, what)
	}
	if len(moved) == 0 {
		return errors.Join(held, errors.Join(errs...))
	}
	return errors.Join(fmt.Errorf("%w; this data dir is fenced: its copies of %s are kept in %s, and the next mount restores them from the replica", held, strings.Join(moved, ", "), dest), errors.Join(errs...))
}

// trackedDatabases lists the databases the state dir has a position or a
// spool for.
func trackedDatabases(stateDir string) ([]string, error) {
	seen := map[string]bool{}
	var dbs []string
	add := func(db string) {
		if !seen[db] {
			seen[db] = true
			dbs = append(dbs, db)
		}
	}
	pos := filepath.Join(stateDir, "pos")
	err := filepath.WalkDir(pos, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			rel, err := filepath.Rel(pos, strings.TrimSuffix(p, ".json"))
			if err != nil {
				return err
			}
			add(filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read positions in %s: %w", pos, err)
	}
	spool := filepath.Join(stateDir, "spool")
	err = filepath.WalkDir(spool, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".seg") || strings.HasSuffix(p, ".snap.ltx")) {
			rel, err := filepath.Rel(spool, filepath.Dir(p))
			if err != nil {
				return err
			}
			add(filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read spool in %s: %w", spool, err)
	}
	return dbs, nil
}

// spoolHolds reports whether a database's spool directory holds any
// captured transaction.
func spoolHolds(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".seg") || strings.HasSuffix(e.Name(), ".snap.ltx") {
			return true
		}
	}
	return false
}

// replicaTXID is the highest TXID any level of db holds.
func replicaTXID(ctx context.Context, store s3backend.Store, db string) (uint64, error) {
	var top uint64
	for _, lvl := range []int{s3backend.LevelSnapshot, 3, 2, 1, s3backend.LevelL0} {
		infos, err := store.List(ctx, db, lvl)
		if err != nil {
			return 0, fmt.Errorf("list level %d of %s: %w", lvl, db, err)
		}
		for _, i := range infos {
			top = max(top, i.MaxTXID)
		}
	}
	return top, nil
}

// moveAside moves db's files, spool and position under dest.
func moveAside(dataDir, stateDir, dest, db string) error {
	rel := filepath.FromSlash(db)
	moves := [][2]string{
		{filepath.Join(stateDir, "spool", rel), filepath.Join(dest, "spool", rel)},
		{filepath.Join(stateDir, "pos", rel+".json"), filepath.Join(dest, "pos", rel+".json")},
	}
	for _, s := range []string{"", "-wal", "-journal", "-shm"} {
		moves = append(moves, [2]string{filepath.Join(dataDir, rel+s), filepath.Join(dest, "db", rel+s)})
	}
	for _, m := range moves {
		if _, err := os.Lstat(m[0]); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(m[1]), 0o700); err != nil {
			return fmt.Errorf("keep %s aside: %w", db, err)
		}
		if err := os.Rename(m[0], m[1]); err != nil {
			return fmt.Errorf("keep %s aside: %w", db, err)
		}
	}
	return nil
}
