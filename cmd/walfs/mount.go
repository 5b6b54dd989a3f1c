package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/lease"
	"github.com/walfs/walfs/wal/follow"
	"github.com/walfs/walfs/wal/replicate"
	"github.com/walfs/walfs/wal/restore"
)

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount a directory whose SQLite databases are replicated commit by commit",
		ArgsUsage: "MOUNTPOINT",
		Description: "Serves --data-dir at MOUNTPOINT (an empty directory; created if missing). Open your\n" +
			"databases inside MOUNTPOINT. Every committed transaction (WAL or rollback journal) is\n" +
			"spooled locally before SQLite's commit returns, then uploaded to the replica in batches\n" +
			"(at most one upload per --sync-interval per database; an idle database costs no requests).\n\n" +
			"If --data-dir lacks databases the replica holds, they are restored before the mount\n" +
			"appears, so an app on a brand-new machine finds its data.\n\n" +
			"Runs in the foreground. Ctrl-C, SIGTERM or `walfs unmount` flush and unmount.\n\n" +
			"Examples:\n" +
			"  walfs mount --data-dir ./data --replica file://$PWD/replica ./mnt\n" +
			"  walfs mount --data-dir /var/lib/app --replica 's3://bucket/app?endpoint=http://127.0.0.1:9000' /mnt/app\n" +
			"  walfs mount --config /etc/walfs.yml",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"WALFS_DATA_DIR"}, Usage: "directory that holds the real files (must be outside the mount point)"},
			&cli.StringFlag{Name: "replica", Aliases: []string{"r"}, EnvVars: []string{"WALFS_REPLICA_URL"}, Usage: "replica URL: file:///path, /path or s3://bucket/path?endpoint=…&region=… (default: <data-dir>/.walfs/replica, same disk: for trying walfs out only)"},
			&cli.DurationFlag{Name: "sync-interval", Value: time.Second, EnvVars: []string{"WALFS_SYNC_INTERVAL"}, Usage: "at most one upload per database per interval; commits in between share the next upload"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "on shutdown, how long to wait for pending uploads"},
			&cli.StringFlag{Name: "durability", Value: "async", EnvVars: []string{"WALFS_DURABILITY"}, Usage: "async: commits return at local speed and reach the store within --sync-interval; sync: a commit returns only after the store acknowledged it (fails with a disk I/O error, and is not committed locally, if the store cannot within --sync-timeout)"},
			&cli.StringFlag{Name: "lease", Value: "auto", EnvVars: []string{"WALFS_LEASE"}, Usage: "single writer per replica path, through a lease object renewed with conditional writes: auto (use it where the store supports conditional writes, warn otherwise), required (refuse to start without it) or off"},
			&cli.StringFlag{Name: "capture", Value: "auto", EnvVars: []string{"WALFS_CAPTURE"}, Usage: "how -wal writes are captured: userspace (every write comes through walfs; portable; needed for --durability sync), passthrough (the kernel writes the WAL at native speed and walfs reads new frames back; needs Linux >= 6.9 and root), or auto (passthrough where available)"},
			&cli.DurationFlag{Name: "sync-timeout", Value: 10 * time.Second, EnvVars: []string{"WALFS_SYNC_TIMEOUT"}, Usage: "with --durability sync, how long a commit waits for the store before it fails"},
			&cli.DurationFlag{Name: "snapshot-interval", Value: replicate.DefaultSnapshotInterval, EnvVars: []string{"WALFS_SNAPSHOT_INTERVAL"}, Usage: "write a snapshot when the newest one is this old and transactions followed it (also when the level-0 files after it outgrow it 10x); 0: only by size"},
			&cli.DurationFlag{Name: "retention", Value: replicate.DefaultRetention, EnvVars: []string{"WALFS_RETENTION"}, Usage: "keep every point in time of this window restorable and delete what no restore in it needs; 0: keep everything"},
			&cli.StringFlag{Name: "metrics-addr", EnvVars: []string{"WALFS_METRICS_ADDR"}, Usage: "serve Prometheus metrics at http://`ADDR`/metrics, e.g. 127.0.0.1:9090"},
			&cli.DurationFlag{Name: "lease-ttl", Value: lease.DefaultTTL, EnvVars: []string{"WALFS_LEASE_TTL"}, Usage: "how long the lease lasts without renewal (renewed every third of it): a standby can take over this long after the primary died"},
			&cli.BoolFlag{Name: "follow", EnvVars: []string{"WALFS_FOLLOW"}, Usage: "serve the replica's databases read-only and keep them current, for readers on another host; `walfs promote` makes this mount the writer"},
			&cli.DurationFlag{Name: "poll-interval", Value: follow.DefaultInterval, EnvVars: []string{"WALFS_POLL_INTERVAL"}, Usage: "follower: how often to ask the store for news (one small request per poll when the primary publishes its head object)"},
			&cli.DurationFlag{Name: "takeover-after", EnvVars: []string{"WALFS_TAKEOVER_AFTER"}, Usage: "follower: promote itself once the primary's lease has been expired this long (0: only `walfs promote` does)"},
			allowOtherFlag(),
			&cli.BoolFlag{Name: "debug-fuse", Usage: "log every FUSE request (very verbose)"},
		),
		Action: runMount,
	}
}

func runMount(c *cli.Context) error {
	cfg, err := loadSettings(c)
	if err != nil {
		return err
	}
	log := newLogger(c.App.ErrWriter, cfg.LogLevel, cfg.LogFormat)
	startPprof(log)
	limitMemory(c.Context, log)
	if cfg.MountPoint == "" {
		return usagef("mount needs a mount point: walfs mount --data-dir DIR MOUNTPOINT (see walfs mount --help)")
	}
	if cfg.DataDir == "" {
		return usagef("mount needs --data-dir, the directory that holds the real files (see walfs mount --help)")
	}
	if _, err := s3backend.Resolve(cfg.Replica); err != nil {
		return err // a wrong replica setting fails before anything is created
	}
	if err := fusefs.CheckLayout(cfg.DataDir, cfg.MountPoint); err != nil {
		return err // before creating anything inside a wrong layout
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir %s: %w (give --data-dir a directory, or a path walfs may create)", cfg.DataDir, err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	clearStaleMount(cfg.MountPoint, cfg.DataDir, log)
	if err := fusefs.CheckPaths(cfg.DataDir, cfg.MountPoint, log); err != nil {
		return err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("/dev/fuse is missing (load the fuse kernel module, or in a container pass --device /dev/fuse)")
	}
	if err := cfg.Access.check(os.Geteuid(), fuseConfPath); err != nil {
		return err
	}
	ctx := c.Context
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	store, err := s3backend.New(ctx, cfg.Replica, log)
	if err != nil {
		return err
	}
	requests := instrument.NewCounter() // every store call, for status and metrics
	store = instrument.Wrap(store, requests)
	if err := store.Init(ctx); err != nil {
		return err // access is checked before the mount becomes visible
	}
	var held *lease.Lease
	if cfg.Follow {
		// A follower serves the replica read-only until promoted; then it
		// goes on below as the primary, with the lease it took.
		if held, err = runFollower(c, cfg, store, requests, log, sigs); err != nil || held == nil {
			return err
		}
	} else if held, err = openLease(ctx, cfg, store, log); err != nil {
		var he *lease.HeldError
		if errors.As(err, &he) {
			// Another walfs writes this replica path (a standby took over?):
			// what this data dir holds and the replica lacks is kept aside.
			return setAsideFenced(ctx, cfg.DataDir, store, he)
		}
		return err
	}
	return servePrimary(c, cfg, store, requests, held, log, sigs, cfg.Follow)
}

// servePrimary mounts the data dir as the writer of the replica, holding
// held (nil: running without a lease), until unmounted.
func servePrimary(c *cli.Context, cfg *settings, store s3backend.Store, requests *instrument.Counter, held *lease.Lease, log *slog.Logger, sigs chan os.Signal, promoted bool) error {
	ctx := c.Context
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := held.Release(rctx); err != nil {
			log.Warn("release replica lease", "err", err)
		}
	}()
	// stopped closes before the lease is released above, so that the
	// watcher below does not take our own release for a takeover.
	stopped := make(chan struct{})
	defer close(stopped)
	store = lease.Fence(store, held) // a writer that lost its lease stops uploading at once
	leaseMode, _ := lease.ParseMode(cfg.Lease)
	pub := startHeadPublisher(ctx, store, held, leaseMode, cfg.SyncInterval, log)
	// After the last upload (rep.Close comes first on every path) and
	// before the lease is released.
	defer closeHeadPublisher(pub, 10*time.Second, log)
	log.Info("starting", "data_dir", cfg.DataDir, "mount_point", cfg.MountPoint, "replica", store.String(), "sync_interval", cfg.SyncInterval, "durability", cfg.Durability)
	capture, why := chooseCapture(cfg.Capture, cfg.Durability)
	log.Info("capture path", "path", capture, "why", why)
	log.Info("mount access", "who", cfg.Access.who(os.Geteuid()), "from", cfg.Access.From, "permissions", "checked by the kernel against each file's owner and mode, as on the disk")
	repOpts := replicate.Options{
		Capture:      capture,
		DataDir:      cfg.DataDir,
		Store:        store,
		SyncInterval: cfg.SyncInterval,
		Durability:   cfg.Durability,
		SyncTimeout:  cfg.SyncTimeout,
		Logger:       log,
		Maintenance:  maintenanceOptions(cfg),
		Restore: func(ctx context.Context, db, path string) (replicate.Pos, error) {
			res, err := restore.Restore(ctx, store, db, path, restore.Options{Logger: log})
			if err != nil {
				return replicate.Pos{}, err
			}
			return replicate.Pos{TXID: res.Plan.TXID}, nil
		},
	}
	headHooks(pub, &repOpts)
	rep, err := replicate.New(repOpts)
	if err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := startMetrics(cfg.MetricsAddr, metricsSource{dbs: rep.Status, requests: requests.Ops, head: pub}, log)
		if err != nil {
			rep.Close()
			return err
		}
		defer stopMetrics()
	}
	if err := rep.Start(ctx); err != nil {
		rep.Close()
		return err
	}
	opts := fusefs.Options{
		DataDir: cfg.DataDir, MountPoint: cfg.MountPoint, Capturer: rep, Logger: log, Debug: c.Bool("debug-fuse"),
		Passthrough: capture == replicate.CapturePassthrough, AllowOther: cfg.Access.AllowOther,
	}
	m, err := fusefs.New(opts)
	for try := 0; promoted && errors.Is(err, fusefs.ErrMountPointNotEmpty) && try < 5; try++ {
		// Promotion detached the read-only view just now: an app that
		// wrote meanwhile wrote into the bare mount point. Keep that aside
		// (named in the log) and mount.
		if serr := keepGapFiles(cfg.MountPoint, cfg.DataDir, log); serr != nil {
			err = errors.Join(err, serr)
			break
		}
		m, err = fusefs.New(opts)
	}
	if err != nil {
		rep.Close()
		return err
	}
	rep.SetLocks(m) // databases written outside SQLite are read as a SQLite reader would
	log.Info("mounted; open your databases inside the mount point", "mount_point", cfg.MountPoint)
	// reconcile makes the replica describe what SQLite reads from files that
	// were written outside its protocol, before a sync or unmount flushes.
	reconcile := func(ctx context.Context) {
		if busy := rep.Reconcile(ctx); len(busy) > 0 {
			log.Warn("databases written outside SQLite are checked once their writers let go", "databases", strings.Join(busy, ", "))
		}
	}

	// A signal's shutdown runs on its own goroutine and unmounts as its
	// last step, so m.Wait can return while it is still finishing:
	// shutdownMu is held for the whole of it and guards shutdownErr.
	var once sync.Once
	var shutdownMu sync.Mutex
	var shutdownErr error
	shutdown := func(ctx context.Context, timeout time.Duration, lazy, fromSignal bool) error {
		fctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		reconcile(fctx)
		if err := rep.Flush(fctx); err != nil {
			return err
		}
		if err := rep.Verify(fctx); err != nil {
			return fmt.Errorf("verify replica: %w", err)
		}
		if err := m.Unmount(lazy); err != nil {
			if !fromSignal || !errors.Is(err, fusefs.ErrBusy) {
				return err
			}
			log.Warn("files still open at shutdown; detaching the mount lazily", "err", err)
			if err := m.Unmount(true); err != nil {
				return err
			}
		}
		return nil
	}
	ctl, err := startControl(rep.StateDir(), log, func(ctx context.Context, req unmountRequest) error {
		if req.Timeout <= 0 {
			req.Timeout = cfg.Timeout
		}
		return shutdown(ctx, req.Timeout, req.Lazy, false)
	}, func(ctx context.Context, timeout time.Duration) error {
		if timeout <= 0 {
			timeout = cfg.Timeout
		}
		fctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		reconcile(fctx)
		if err := rep.Flush(fctx); err != nil {
			return err
		}
		return rep.Verify(fctx)
	}, statusRoute(func() statusReport {
		report := buildStatus(rep.Status(), requests, cfg.DataDir, store.String())
		report.Head = headStatusOf(pub)
		return report
	}),
		verifyRoute(mountVerifier(rep, cfg.DataDir, store.String(), cfg.Timeout)),
		jsonRoute("POST /promote", func(context.Context, promoteRequest) unmountResponse {
			return unmountResponse{Error: "promote: " + cfg.MountPoint + " is already the writer of " + store.String() + "; promote a walfs mount --follow"}
		}))
	if err != nil {
		m.Unmount(true)
		rep.Close()
		return err
	}
	defer ctl.Close()

	go func() {
		var sig os.Signal
		select {
		case <-held.Lost():
			lost := held.Err()
			select {
			case <-stopped:
				return // released by our own shutdown
			default:
			}
			if lost == nil {
				return
			}
			// A standby took the lease: never write again. Unmounting
			// refuses the app's writes; what was not uploaded stays in the
			// data dir, and the next mount keeps it aside (fenced.go).
			once.Do(func() {
				shutdownMu.Lock()
				defer shutdownMu.Unlock()
				shutdownErr = fmt.Errorf("%w: this mount stopped serving and unmounted; commits it had not uploaded stay in %s and are kept aside at its next start", lost, cfg.DataDir)
				log.Error("replica lease lost to another walfs", "err", shutdownErr)
				if err := m.Unmount(true); err != nil {
					log.Error("lazy unmount failed", "err", err)
				}
			})
			return
		case s, ok := <-sigs:
			if !ok {
				return
			}
			sig = s
		}
		log.Info("signal received: flushing and unmounting", "signal", sig.String(), "timeout", cfg.Timeout)
		once.Do(func() {
			shutdownMu.Lock()
			defer shutdownMu.Unlock()
			shutdownErr = shutdown(context.Background(), cfg.Timeout, false, true)
			if shutdownErr != nil {
				log.Error("clean shutdown failed; unmounting anyway (captured transactions stay in the data dir and upload at the next mount)", "err", shutdownErr)
				if err := m.Unmount(true); err != nil {
					log.Error("lazy unmount failed", "err", err)
				}
			}
		})
	}()
	m.Wait()
	shutdownMu.Lock()
	stopErr := shutdownErr
	shutdownMu.Unlock()
	if stopErr == nil {
		// Files kept open past a lazy unmount may have committed after the
		// final flush: upload those too (the Pending check below reports
		// what could not be).
		fctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
		_ = rep.Flush(fctx)
		cancel()
	}
	closeErr := rep.Close()
	if errors.Is(stopErr, lease.ErrLost) {
		return stopErr
	}
	if p := rep.Pending(); len(p) > 0 {
		err := &replicate.PendingError{Pending: p}
		log.Warn("stopped with transactions not yet uploaded; they upload at the next mount of this data dir", "err", err)
		return err
	}
	if stopErr != nil {
		return stopErr
	}
	if closeErr != nil {
		return closeErr
	}
	log.Info("unmounted cleanly; the replica holds every captured transaction")
	return nil
}

// clearStaleMount detaches a dead walfs mount left at mountPoint by a killed
// walfs, so a supervisor can restart us unattended. A mount is dead when the
// kernel says so (ENOTCONN) or when it is a walfs mount of this data dir and
// nothing answers on its control socket. Live mounts are left alone.
func clearStaleMount(mountPoint, dataDir string, log interface{ Info(string, ...any) }) {
	ok, e := fusefs.IsMountPoint(mountPoint)
	if !ok || e.FsType != "fuse."+fusefs.FsType {
		return
	}
	_, statErr := os.Stat(mountPoint)
	dead := errors.Is(statErr, syscall.ENOTCONN)
	if !dead && e.Source == dataDir {
		conn, err := net.DialTimeout("unix", filepath.Join(dataDir, fusefs.StateDirName, controlSocketName), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		dead = true
	}
	if dead {
		if err := syscall.Unmount(mountPoint, syscall.MNT_DETACH); err == nil {
			log.Info("cleared the dead mount left by a previous walfs", "mount_point", mountPoint)
		}
	}
}

// absPath makes a path absolute and clean.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}
