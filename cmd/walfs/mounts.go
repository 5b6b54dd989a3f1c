package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/fusefs"
)

// Commands that ask running mounts (status, verify, sync --verify) find
// them, ask each, and print the answers the same way.

// mountPoints returns the mount point a command's one optional argument
// names, or every walfs mount on this machine.
func mountPoints(c *cli.Context) ([]string, error) {
	if c.NArg() > 1 {
		return nil, usagef("%s takes at most one argument, a mount point (see walfs %s --help)", c.Command.Name, c.Command.Name)
	}
	if c.NArg() == 1 {
		mnt, err := filepath.Abs(c.Args().First())
		if err != nil {
			return nil, usagef("mount point %q: %v", c.Args().First(), err)
		}
		return []string{mnt}, nil
	}
	all, err := fusefs.Mounts()
	if err != nil {
		return nil, err
	}
	var mounts []string
	for _, m := range all {
		if m.FsType == "fuse."+fusefs.FsType || m.FsType == fusefs.FsType {
			mounts = append(mounts, m.MountPoint)
		}
	}
	if len(mounts) == 0 {
		return nil, errors.New("no walfs mount on this machine (give the mount point to ask one in another mount namespace)")
	}
	return mounts, nil
}

// askEach asks every mount in mounts and returns the answers in order. A
// mount that cannot answer is left out and named in the returned error.
func askEach[T any](ctx context.Context, mounts []string, ask func(ctx context.Context, mnt string) (T, error)) ([]T, error) {
	var reports []T
	var errs []error
	for _, mnt := range mounts {
		rep, err := ask(ctx, mnt)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", mnt, err))
			continue
		}
		reports = append(reports, rep)
	}
	return reports, errors.Join(errs...)
}

// printReports writes reports to stdout: as one JSON array with --json
// ([] for none), else each with print (i counts from 0).
func printReports[T any](c *cli.Context, reports []T, print func(w io.Writer, i int, rep T)) error {
	if c.Bool("json") {
		if reports == nil {
			reports = []T{}
		}
		return writeJSON(c.App.Writer, reports)
	}
	for i, rep := range reports {
		print(c.App.Writer, i, rep)
	}
	return nil
}
