package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/cmd/internal/config"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/replicate"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "inspect walfs settings",
		Subcommands: []*cli.Command{
			configCheckCommand(),
		},
	}
}

func configCheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "show the replica settings walfs mount would use, where each comes from, and optionally test them",
		Description: "Resolves the replica the way `walfs mount` does — --replica (or WALFS_REPLICA_URL) over the\n" +
			"config file, provider detection from the endpoint, defaults — and prints every setting with\n" +
			"its source: user (the --replica URL), config (the file), env, detected (the provider profile\n" +
			"for the endpoint, with the reason) or default. Credentials are never printed, only whether\n" +
			"they are set and where from.\n\n" +
			"Without --probe nothing is contacted. With --probe walfs lists the replica path, writes, reads\n" +
			"back and deletes a tiny object under it, and measures whether the store honours conditional\n" +
			"writes (If-None-Match: *).\n\n" +
			"Examples:\n" +
			"  walfs config check --config /etc/walfs.yml\n" +
			"  walfs config check --replica 's3://bucket/app?endpoint=s3.us-west-004.backblazeb2.com' --probe\n" +
			"  walfs config check --replica s3://bucket/app --json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML config `FILE` as given to walfs mount --config (default: $WALFS_CONFIG); its replica block, top-level credentials and data-dir are used"},
			&cli.StringFlag{Name: "replica", Aliases: []string{"r"}, Usage: "replica `URL` as given to walfs mount --replica (default: $WALFS_REPLICA_URL); as in mount it replaces the file's replica url, but explicit replica keys in the file (bucket, region, ...) still win"},
			&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON to stdout: every setting as {value, source, why}, plus the probe results with --probe"},
			&cli.BoolFlag{Name: "probe", Usage: "contact the store: list, write, read and delete a tiny object under the replica path and test conditional writes; exits 1 with a hint if any step fails"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "with --probe, the `DURATION` all probe requests together may take; within it each request is retried on transient errors"},
			allowOtherFlag(),
		},
		Action: runConfigCheck,
	}
}

// checkedReplica is a replica config with where its URL came from.
type checkedReplica struct {
	cfg        s3backend.Config
	configFile string // "" without a config file
	urlFrom    string // "--replica", "WALFS_REPLICA_URL", "config", "default"
	access     mountAccess
}

func runConfigCheck(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("config check takes no arguments; give the replica with --replica URL or --config FILE (see walfs config check --help)")
	}
	rep, err := checkReplica(c)
	if err != nil {
		return err
	}
	res, err := s3backend.Resolve(rep.cfg)
	if err != nil {
		return err
	}
	report := newCheckReport(rep, res)
	var probeErr error
	if c.Bool("probe") {
		report.Probe, probeErr = runProbe(c.Context, rep.cfg, c.Duration("timeout"))
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, report); err != nil {
			return err
		}
	} else if err := report.print(c.App.Writer); err != nil {
		return err
	}
	return probeErr
}

// checkReplica merges --replica, WALFS_REPLICA_URL and the config file the
// way `walfs mount` does (settings.go).
func checkReplica(c *cli.Context) (checkedReplica, error) {
	var rep checkedReplica
	file := &config.Config{}
	path := c.String("config")
	if !c.IsSet("config") {
		path = os.Getenv("WALFS_CONFIG")
	}
	if path != "" {
		var err error
		if file, err = config.Load(path); err != nil {
			return rep, err
		}
		rep.configFile = path
	}
	rep.access = pickAccess(c, file)
	rep.cfg = replicaConfig(file)
	if rep.cfg.URL != "" || rep.cfg.Bucket != "" || rep.cfg.Path != "" {
		rep.urlFrom = "config"
	}
	flagURL, from := c.String("replica"), "--replica"
	if !c.IsSet("replica") {
		flagURL, from = os.Getenv("WALFS_REPLICA_URL"), "WALFS_REPLICA_URL"
	}
	if flagURL != "" {
		rep.cfg.URL, rep.urlFrom = flagURL, from
	}
	if rep.urlFrom == "" {
		if file.DataDir == "" {
			return rep, usagef("config check needs a replica: --replica URL, or --config FILE with a replica or data-dir (see walfs config check --help)")
		}
		dir, err := filepath.Abs(file.DataDir)
		if err != nil {
			return rep, usagef("data-dir in %s: %v", path, err)
		}
		rep.cfg.URL, rep.urlFrom = "file://"+filepath.Join(dir, replicate.StateDirName, "replica"), "default"
	}
	rep.cfg.AccessKeyID, rep.cfg.SecretAccessKey = file.Credentials()
	return rep, nil
}

// runProbe builds the store exactly as mount would and probes it.
func runProbe(ctx context.Context, cfg s3backend.Config, timeout time.Duration) (*probeReport, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Resolve already reported the warnings New would log.
	st, err := s3backend.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	p, ok := st.(s3backend.Prober)
	if !ok {
		return nil, fmt.Errorf("probe %s: this store cannot be probed", st)
	}
	res, err := p.Probe(ctx)
	return &probeReport{ProbeResult: res, Store: st.String()}, err
}
