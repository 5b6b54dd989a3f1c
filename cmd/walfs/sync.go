package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/fusefs"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:      "sync",
		Usage:     "upload every transaction captured so far and wait until the replica holds it",
		ArgsUsage: "MOUNTPOINT",
		Description: "Asks the running `walfs mount` at MOUNTPOINT to upload its spool now (without waiting for\n" +
			"--sync-interval) and returns once the replica is proven to hold every transaction committed\n" +
			"before the command started. Useful before backups, deploys and in tests.\n\n" +
			"With --verify it then does what `walfs verify MOUNTPOINT` does: compares every database with\n" +
			"the replica's latest point, prints one line per database, repairs a replica that differs,\n" +
			"and exits 1 if any differed.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up (exit 1, naming what is pending) after this long"},
			&cli.BoolFlag{Name: "verify", Usage: "then compare each database's checksum with the replica's latest point (see walfs verify --help)"},
			&cli.BoolFlag{Name: "json", Usage: "with --verify, print the comparison as JSON to stdout"},
		},
		Action: func(c *cli.Context) error {
			mnt, stateDir, err := mountArg(c)
			if err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			ctx, cancel := context.WithTimeout(c.Context, timeout+10*time.Second)
			defer cancel()
			if err := callControl(ctx, stateDir, "flush", unmountRequest{Timeout: timeout}); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "walfs: replica of %s is up to date\n", mnt)
			if !c.Bool("verify") {
				return nil
			}
			vctx, vcancel := context.WithTimeout(c.Context, timeout+10*time.Second)
			defer vcancel()
			rep, err := requestVerify(vctx, mnt, verifyRequest{Timeout: timeout})
			if err != nil {
				return err
			}
			if err := printReports(c, []verifyReport{rep}, printVerifyReport); err != nil {
				return err
			}
			return verifyFailures([]verifyReport{rep})
		},
	}
}

// mountArg resolves the one MOUNTPOINT argument of a command to the mount
// point and the state dir of the walfs serving it.
func mountArg(c *cli.Context) (mnt, stateDir string, err error) {
	if c.NArg() != 1 {
		return "", "", usagef("%s needs exactly one argument, the mount point (see walfs %s --help)", c.Command.Name, c.Command.Name)
	}
	mnt, err = filepath.Abs(c.Args().First())
	if err != nil {
		return "", "", usagef("mount point %q: %v", c.Args().First(), err)
	}
	dataDir, err := fusefs.FindWalfs(mnt)
	if err != nil {
		return "", "", err
	}
	return mnt, filepath.Join(dataDir, fusefs.StateDirName), nil
}
