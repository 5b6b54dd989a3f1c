package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func unmountCommand() *cli.Command {
	return &cli.Command{
		Name:      "unmount",
		Aliases:   []string{"umount"},
		Usage:     "flush every captured transaction to the replica, then unmount",
		ArgsUsage: "MOUNTPOINT",
		Description: "Asks the running `walfs mount` to upload everything it captured, checks that the replica\n" +
			"holds it, unmounts, and lets the mount process exit 0. If files are still open, the store is\n" +
			"unreachable or --timeout passes, nothing is unmounted and the reason is printed.\n" +
			"If the walfs process is gone (\"transport endpoint is not connected\"), the dead mount is cleared;\n" +
			"its captured transactions stay in the data dir and upload at the next `walfs mount`.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for the upload of pending transactions"},
			&cli.BoolFlag{Name: "lazy", Usage: "after the final flush, detach even if files are still open (they keep working until closed)"},
		},
		Action: runUnmount,
	}
}

func runUnmount(c *cli.Context) error {
	mnt, stateDir, err := mountArg(c)
	if err != nil {
		return err
	}
	timeout := c.Duration("timeout")
	ctx, cancel := context.WithTimeout(c.Context, timeout+10*time.Second)
	defer cancel()
	err = requestUnmount(ctx, stateDir, unmountRequest{Timeout: timeout, Lazy: c.Bool("lazy")})
	var nd *noDaemonError
	if errors.As(err, &nd) {
		// The daemon is gone: clear the dead mount so the directory works again.
		if uerr := syscall.Unmount(mnt, syscall.MNT_DETACH); uerr != nil {
			return fmt.Errorf("unmount %s: %v (and no walfs process answers for it)", mnt, uerr)
		}
		fmt.Fprintf(c.App.ErrWriter, "walfs: cleared dead mount %s; transactions it captured upload at the next walfs mount of %s\n", mnt, filepath.Dir(stateDir))
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "walfs: %s flushed to the replica and unmounted\n", mnt)
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
