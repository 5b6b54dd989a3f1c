package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
)

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "make a follower mount the writer of its replica (the primary is gone)",
		ArgsUsage: "MOUNTPOINT",
		Description: "Asks the `walfs mount --follow` at MOUNTPOINT to take over: it waits until the primary's\n" +
			"lease has expired (or was released, or names a dead process on this host), takes the lease,\n" +
			"applies everything the replica holds, and mounts MOUNTPOINT again as a writable primary that\n" +
			"continues the replica's TXID sequence. Files opened before the promotion keep reading the\n" +
			"read-only view until closed: reopen databases to write. A primary that comes back finds the\n" +
			"lease taken and refuses to start.\n\n" +
			"Examples:\n" +
			"  walfs promote /mnt/app\n" +
			"  walfs promote --wait 2m /mnt/app",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "wait", Value: 90 * time.Second, Usage: "how long to wait for the primary's lease to expire"},
		},
		Action: runPromote,
	}
}

func runPromote(c *cli.Context) error {
	mnt, stateDir, err := mountArg(c)
	if err != nil {
		return err
	}
	wait := c.Duration("wait")
	if wait <= 0 {
		return usagef("--wait must be positive, got %s", wait)
	}
	ctx, cancel := context.WithTimeout(c.Context, wait+2*time.Minute)
	defer cancel()
	out, err := askControl[unmountResponse](ctx, stateDir, "promote", promoteRequest{Wait: wait}, "ask walfs mount --follow to promote")
	if err != nil {
		return err
	}
	if !out.OK {
		return errors.New(out.Error)
	}
	// The primary mounts at the same place right after the answer.
	for {
		rep, err := fetchStatus(ctx, mnt)
		if err == nil && rep.Role == "" {
			fmt.Fprintf(c.App.ErrWriter, "walfs: %s is now the writer of %s\n", mnt, rep.Replica)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote: the lease is taken but %s did not come back as the primary: %v", mnt, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
