package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/cmd/internal/config"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
	"github.com/walfs/walfs/wal/replicate"
)

// settings is what `walfs mount` runs with, after flags, environment and
// the config file are merged (in that order of precedence).
type settings struct {
	DataDir, MountPoint string
	Replica             s3backend.Config
	SyncInterval        time.Duration
	Timeout             time.Duration
	Durability          replicate.Durability
	SyncTimeout         time.Duration
	Capture             replicate.CaptureMode // may be CaptureAuto (chooseCapture resolves it)
	SnapshotInterval    time.Duration         // 0: no snapshots because of age
	Retention           time.Duration         // 0: keep everything
	MetricsAddr         string
	Lease               string
	LeaseTTL            time.Duration
	Follow              bool          // a read-only follower of the replica (follow.go)
	PollInterval        time.Duration // follower: between polls
	TakeoverAfter       time.Duration // follower: promote itself once the lease has been expired this long; 0: never
	LogLevel, LogFormat string
	Access              mountAccess // who may enter the mount (access.go)
}

func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"WALFS_CONFIG"}, Usage: "YAML config file; flags and environment variables override its settings"},
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"WALFS_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"WALFS_LOG_FORMAT"}, Usage: "text or json"},
	}
}

func loadSettings(c *cli.Context) (*settings, error) {
	var file *config.Config
	if path := c.String("config"); path != "" {
		var err error
		if file, err = config.Load(path); err != nil {
			return nil, err
		}
	} else {
		file = &config.Config{}
	}
	s := &settings{}
	pick := func(flag string, fileVal string) string {
		if c.IsSet(flag) || fileVal == "" {
			return c.String(flag)
		}
		return fileVal
	}
	pickDur := func(flag string, fileVal config.Duration, key string) time.Duration {
		if c.IsSet(flag) || !file.Set[key] {
			return c.Duration(flag)
		}
		return time.Duration(fileVal)
	}
	s.DataDir = pick("data-dir", file.DataDir)
	s.MountPoint = file.MountPoint
	if c.NArg() > 1 {
		return nil, usagef("mount takes one argument, the mount point; got %d (see walfs mount --help)", c.NArg())
	}
	if c.NArg() == 1 {
		s.MountPoint = c.Args().First()
	}
	s.SyncInterval = pickDur("sync-interval", file.SyncInterval, "sync-interval")
	s.Timeout = pickDur("timeout", file.Timeout, "timeout")
	s.SnapshotInterval = pickDur("snapshot-interval", file.SnapshotInterval, "snapshot-interval")
	s.Retention = pickDur("retention", file.Retention, "retention")
	s.MetricsAddr = c.String("metrics-addr")
	if s.SnapshotInterval < 0 || s.Retention < 0 {
		return nil, usagef("--snapshot-interval and --retention must not be negative (0 turns them off)")
	}
	s.SyncTimeout = pickDur("sync-timeout", file.SyncTimeout, "sync-timeout")
	var err error
	if s.Durability, err = replicate.ParseDurability(pick("durability", file.Durability)); err != nil {
		return nil, usagef("--durability must be async or sync, got %q", pick("durability", file.Durability))
	}
	s.Lease = pick("lease", file.Lease)
	if _, err := lease.ParseMode(s.Lease); err != nil {
		return nil, usagef("--lease must be auto, required or off, got %q", s.Lease)
	}
	if s.Capture, err = replicate.ParseCapture(pick("capture", file.Capture)); err != nil {
		return nil, usagef("--capture must be auto, passthrough or userspace, got %q", pick("capture", file.Capture))
	}
	if s.Capture == replicate.CapturePassthrough && s.Durability == replicate.DurabilitySync {
		return nil, usagef("--durability sync needs --capture userspace (or auto): with passthrough the kernel writes the WAL before walfs sees it")
	}
	if s.SyncTimeout <= 0 {
		return nil, usagef("--sync-timeout must be positive, got %s", s.SyncTimeout)
	}
	s.LeaseTTL = pickDur("lease-ttl", file.LeaseTTL, "lease-ttl")
	if s.LeaseTTL < 6*time.Second {
		return nil, usagef("--lease-ttl must be at least 6s (the lease is renewed every third of it), got %s", s.LeaseTTL)
	}
	s.Follow = c.Bool("follow")
	if !c.IsSet("follow") && file.Follow != nil {
		s.Follow = *file.Follow
	}
	s.PollInterval = pickDur("poll-interval", file.PollInterval, "poll-interval")
	s.TakeoverAfter = pickDur("takeover-after", file.TakeoverAfter, "takeover-after")
	if s.PollInterval < 10*time.Millisecond {
		return nil, usagef("--poll-interval must be at least 10ms, got %s", s.PollInterval)
	}
	if s.TakeoverAfter < 0 {
		return nil, usagef("--takeover-after must not be negative (0: never take over on its own), got %s", s.TakeoverAfter)
	}
	if !s.Follow {
		for _, name := range []string{"poll-interval", "takeover-after"} {
			if c.IsSet(name) || file.Set[name] {
				return nil, usagef("--%s applies to a follower only: add --follow, or remove it", name)
			}
		}
	}
	s.Access = pickAccess(c, file)
	s.LogLevel = pick("log-level", file.LogLevel)
	s.LogFormat = pick("log-format", file.LogFormat)
	if s.SyncInterval <= 0 {
		return nil, usagef("--sync-interval must be positive, got %s", s.SyncInterval)
	}
	if s.Timeout <= 0 {
		return nil, usagef("--timeout must be positive, got %s", s.Timeout)
	}
	if s.DataDir, err = absPath(s.DataDir); err != nil {
		return nil, usagef("--data-dir: %v", err)
	}
	if s.MountPoint, err = absPath(s.MountPoint); err != nil {
		return nil, usagef("mount point: %v", err)
	}
	s.Replica = replicaConfig(file)
	if c.IsSet("replica") || s.Replica.URL == "" && s.Replica.Bucket == "" && s.Replica.Path == "" {
		s.Replica.URL = c.String("replica")
	}
	if s.Replica.URL == "" && s.Replica.Bucket == "" && s.Replica.Path == "" && s.DataDir != "" {
		s.Replica.URL = "file://" + filepath.Join(s.DataDir, replicate.StateDirName, "replica")
	}
	if s.Replica.AccessKeyID == "" {
		s.Replica.AccessKeyID = file.AccessKeyID
	}
	if s.Replica.SecretAccessKey == "" {
		s.Replica.SecretAccessKey = file.SecretAccessKey
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		return nil, err
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		return nil, usagef("--log-format must be text or json, got %q", s.LogFormat)
	}
	return s, nil
}

// replicaConfig converts the file's replica section.
func replicaConfig(file *config.Config) s3backend.Config {
	r := file.Replica
	if r == nil {
		return s3backend.Config{}
	}
	return s3backend.Config{
		URL: r.URL, Type: r.Type, Bucket: r.Bucket, Path: r.Path, Endpoint: r.Endpoint, Region: r.Region,
		AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey, CAFile: r.CAFile,
		ForcePathStyle: r.ForcePathStyle, SkipVerify: r.SkipVerify, SignPayload: r.SignPayload,
		PartSize: int64(r.PartSize), Concurrency: r.Concurrency,
	}
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, usagef("--log-level must be debug, info, warn or error, got %q", s)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	lvl, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
