package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/cmd/internal/bench"
	"github.com/walfs/walfs/fusefs"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure SQLite through a walfs mount against the plain disk under it",
		Description: "Runs SQLite workloads (modernc.org/sqlite, built into walfs: nothing else is needed) in a\n" +
			"plain directory and in a temporary walfs mount over the same file system (file replica; then\n" +
			"--replica if given), and prints each figure with the ratio mount/native (for times,\n" +
			"native/mount: 1.00× is native speed, higher is better). Workloads:\n" +
			"  1-row transactions: WAL with synchronous=NORMAL and FULL; DELETE journal (SQLite's default)\n" +
			"    with FULL; 1,000-row transactions; random point reads on a --read-db-mb database;\n" +
			"  --writers connections in one process, and --writers separate processes (walfs re-executes\n" +
			"    itself), writing one WAL database;\n" +
			"  a mixed workload in the spirit of SQLite's speedtest1 (our own code, not speedtest1; bulk\n" +
			"    inserts into tables with 3 indexes, REPLACE, UPDATE, DELETE, VACUUM, joins, reads),\n" +
			"    size --mixed-size, run by the connection that creates the database, in WAL and DELETE mode;\n" +
			"  creating --small-dbs small databases (create, 5 inserts, close), in a mount started for it\n" +
			"    (a mount that has served a thousand databases stays slower for everything after them),\n" +
			"    file replica only;\n" +
			"  big transactions (WAL): --big-rows INSERTs, REPLACEs, UPDATEs, DELETEs on a table with 3\n" +
			"    indexes, VACUUM, checkpoint, each step timed;\n" +
			"  mount only (file replica): walfs's memory (RSS) after --many-dbs small databases were written\n" +
			"    through one mount, and the time from `walfs mount` until a mount over a data dir holding\n" +
			"    --many-dbs databases is usable (a database in it takes a write), first mount and restart.\n" +
			"    The default is 1,000; the figures that matter for many tenants are at --many-dbs 10000,\n" +
			"    which takes tens of minutes on a small VM (creating a database costs several fsyncs);\n" +
			"    --many-dbs 0 skips these rows;\n" +
			"  commit-to-store lag (p50/p99) for sparse commits and under load (not a ratio).\n" +
			"Each workload runs on the plain disk and on every mount back to back before the next one\n" +
			"starts, so that other load on the machine hits both; --runs N repeats everything N times\n" +
			"(native first in odd runs, mounts first in even ones) and prints medians and the\n" +
			"min / median / max of each ratio.\n" +
			"--floor runs every workload (not the mount-only rows) on a bare go-fuse loopback too: go-fuse's\n" +
			"own file system, passthrough for every file where the kernel allows, mounted with walfs's\n" +
			"options; \"vs floor\" is walfs's ratio against it, how close walfs gets to any go-fuse file system.\n" +
			"Run it on your own hardware; we run it before and after every change to the write path.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: os.TempDir(), Usage: "directory on the file system to measure (a temporary subdirectory is created and removed)"},
			&cli.StringFlag{Name: "replica", Usage: "also measure with this replica URL (e.g. an S3 bucket); credentials as for walfs mount"},
			&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, Usage: "how long each timed workload runs"},
			&cli.IntFlag{Name: "runs", Value: 1, Usage: "repeat every workload this many times; with more than one, print medians and the spread of each ratio"},
			&cli.IntFlag{Name: "read-db-mb", Value: 200, Usage: "size of the point-read database in MiB"},
			&cli.IntFlag{Name: "writers", Value: 4, Usage: "connections, and processes, in the concurrent-writers workloads"},
			&cli.IntFlag{Name: "mixed-size", Value: 20, Usage: "size of the mixed workload, as speedtest1's --size (tables of 500×size rows)"},
			&cli.IntFlag{Name: "small-dbs", Value: 1000, Usage: "databases created in the small-databases workload"},
			&cli.IntFlag{Name: "big-rows", Value: 10000, Usage: "rows per INSERT transaction in the big-transaction workload"},
			&cli.IntFlag{Name: "many-dbs", Value: 1000, Usage: "databases for the memory and mount-time rows (10000 for the many-tenant figures: tens of minutes); 0 skips them"},
			&cli.IntFlag{Name: "lag-probes", Value: 25, Usage: "commits timed per lag measurement (sparse ones are 1.2 s apart)"},
			&cli.IntFlag{Name: "rss-db-mb", Usage: "also write a database of this many MiB through the mount and report walfs's peak memory (RSS) while it is written and replicated"},
			&cli.StringFlag{Name: "capture", Value: "auto", Usage: "capture path of the measured mounts: auto, passthrough or userspace (as for walfs mount)"},
			&cli.BoolFlag{Name: "floor", Usage: "also measure a bare go-fuse loopback (with passthrough where the kernel allows) and show how close walfs gets to it"},
			&cli.StringFlag{Name: "only", Usage: "run only the workloads whose name contains this text (\"lag\" for the lag measurements)"},
			&cli.BoolFlag{Name: "json", Usage: "print results as JSON"},
			// One writer process of the several-processes workload; walfs
			// bench starts these itself.
			&cli.StringFlag{Name: "worker-db", Hidden: true},
			&cli.StringFlag{Name: "worker-sync", Hidden: true, Value: "NORMAL"},
			// A bare go-fuse loopback of the given directory at the mount
			// point given as argument, for --floor.
			&cli.StringFlag{Name: "worker-loopback", Hidden: true},
			&cli.BoolFlag{Name: "worker-passthrough", Hidden: true, Value: true},
			&cli.StringFlag{Name: "worker-stats", Hidden: true},
		},
		Action: runBench,
	}
}

// benchTarget is one place the workloads ran: the plain disk ("native"),
// a walfs mount, or the bare loopback (Floor).
type benchTarget struct {
	Name    string         `json:"name"`
	Floor   bool           `json:"floor,omitempty"`
	Results []bench.Result `json:"results"`
	// Ratios: this target's speed / native's (for times native / this).
	Ratios []ratioSummary `json:"ratios,omitempty"`
	// FloorRatios (walfs targets, with --floor): this target's speed / the
	// floor's (for times the floor's / this).
	FloorRatios []ratioSummary        `json:"floor_ratios,omitempty"`
	Requests    *fusefs.LoopbackStats `json:"requests,omitempty"` // the floor's, summed over its processes
	Lag         []bench.LagResult     `json:"lag,omitempty"`
	Capture     string                `json:"capture,omitempty"`
	RSS         *rssResult            `json:"rss,omitempty"`
}

func runBench(c *cli.Context) error {
	if src := c.String("worker-loopback"); src != "" {
		if c.NArg() != 1 {
			return usagef("--worker-loopback SRC takes the mount point as its one argument")
		}
		return runLoopbackWorker(src, c.Args().First(), c.Bool("worker-passthrough"), c.String("worker-stats"), c.App.Writer)
	}
	if c.NArg() > 0 {
		return usagef("bench takes no arguments (see walfs bench --help)")
	}
	if db := c.String("worker-db"); db != "" {
		return bench.RunWorker(c.Context, db, c.String("worker-sync"), c.Duration("duration"), os.Stdin, c.App.Writer)
	}
	cfg := bench.Config{
		Duration: c.Duration("duration"), ReadDBMB: c.Int("read-db-mb"), Writers: c.Int("writers"), BatchRows: 1000,
		SmallDBs: c.Int("small-dbs"), MixedSize: c.Int("mixed-size"), BigRows: c.Int("big-rows"), Only: c.String("only"),
	}
	runs, manyDBs := c.Int("runs"), c.Int("many-dbs")
	if cfg.Duration <= 0 || cfg.ReadDBMB <= 0 || cfg.Writers <= 0 || cfg.SmallDBs <= 0 || cfg.MixedSize <= 0 || cfg.BigRows < 10 || runs <= 0 || manyDBs < 0 {
		return usagef("--duration, --read-db-mb, --writers, --small-dbs, --mixed-size and --runs must be positive, --big-rows at least 10, --many-dbs not negative")
	}
	capture := c.String("capture")
	if capture != "auto" && capture != "passthrough" && capture != "userspace" {
		return usagef("--capture %q: use auto, passthrough or userspace", capture)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Worker = func(db, syncMode string, d time.Duration) []string {
		return []string{exe, "bench", "--worker-db", db, "--worker-sync", syncMode, "--duration", d.String()}
	}
	root, err := os.MkdirTemp(c.String("dir"), "walfs-bench-")
	if err != nil {
		return fmt.Errorf("create bench dir in %s: %w (check --dir)", c.String("dir"), err)
	}
	defer os.RemoveAll(root)
	progress := c.App.ErrWriter

	native := filepath.Join(root, "native")
	if err := os.MkdirAll(native, 0o700); err != nil {
		return err
	}
	replicas := []string{"file://" + filepath.Join(root, "replica")}
	if u := c.String("replica"); u != "" {
		replicas = append(replicas, u)
	}
	var mounts []*benchMountPoint
	defer func() {
		for _, m := range mounts {
			m.stop()
		}
	}()
	for i, replica := range replicas {
		name := "walfs (file replica)"
		if i > 0 {
			name = "walfs (--replica)"
		}
		if capture != "auto" {
			name = strings.TrimSuffix(name, ")") + ", " + capture + ")"
		}
		dir := filepath.Join(root, fmt.Sprintf("m%d", i))
		m, err := startBenchMount(name, filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), replica, capture, 30*time.Second)
		if err != nil {
			return err
		}
		if i > 0 {
			m.fresh = nil // Fresh workloads run with the file replica only
		}
		mounts = append(mounts, m)
	}
	targets := []benchTarget{{Name: "native"}}
	for _, m := range mounts {
		targets = append(targets, benchTarget{Name: m.name})
	}
	// places: where the workloads run besides the plain disk, in target
	// order (targets[i+1]).
	places := mounts
	var floor *benchMountPoint
	reqs := &floorRequests{}
	if c.Bool("floor") {
		dir := filepath.Join(root, "floor")
		if floor, err = startFloorMount(predictedFloorName(), filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), reqs, 30*time.Second); err != nil {
			return err
		}
		defer floor.stop()
		places = append(slices.Clip(places), floor)
		targets = append(targets, benchTarget{Name: floor.name, Floor: true})
	}
	for run := 1; run <= runs; run++ {
		if err := benchRun(c.Context, run, runs, root, native, places, targets, cfg, progress); err != nil {
			return err
		}
		if manyDBs > 0 {
			rs, err := benchManyDBs(c.Context, filepath.Join(root, fmt.Sprintf("many%d", run)), manyDBs, capture, cfg, progress)
			if err != nil {
				return err
			}
			for _, r := range rs {
				r.Run = run
				targets[1].Results = append(targets[1].Results, r)
			}
		}
	}
	if floor != nil {
		// Its request counts arrive when it exits, and name it.
		floor.stop()
		t := &targets[len(targets)-1]
		t.Name = reqs.name(t.Name)
		if reqs.n > 0 {
			t.Requests = &reqs.sum
		}
	}
	for i, m := range mounts {
		if err := m.extras(c.Context, &targets[i+1], cfg, c.Int("lag-probes"), c.Int("rss-db-mb"), progress); err != nil {
			return err
		}
	}
	rows := summarize(targets)
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(targets)
	}
	printBench(c.App.Writer, targets, rows, runs)
	return nil
}

// benchRun runs every selected workload once on the plain disk and on each
// mount, back to back, so that a change in the machine's load (other jobs
// on a shared host) skews a ratio as little as possible. Odd runs start
// each workload on the plain disk, even runs on the mounts. A workload that
// asks for a fresh mount gets one like the mount's (m.fresh), under root; it
// does not run on a mount without (a --replica mount).
func benchRun(ctx context.Context, run, runs int, root, native string, mounts []*benchMountPoint, targets []benchTarget, cfg bench.Config, progress io.Writer) error {
	type place struct {
		target int
		mount  *benchMountPoint // nil: the plain disk
	}
	places := []place{{0, nil}}
	for i, m := range mounts {
		places = append(places, place{i + 1, m})
	}
	if run%2 == 0 {
		places = append(places[1:], places[0])
	}
	prefix := ""
	if runs > 1 {
		prefix = fmt.Sprintf("run %d/%d: ", run, runs)
	}
	for _, w := range bench.Standard(cfg) {
		if !cfg.Selected(w.Name) {
			continue
		}
		for _, p := range places {
			m := p.mount
			if w.Fresh && m != nil {
				if m.fresh == nil {
					continue
				}
				var err error
				if m, err = m.fresh(filepath.Join(root, "fresh")); err != nil {
					return err
				}
			}
			rs, err := runWorkload(ctx, w, m, native, prefix, cfg, progress)
			if w.Fresh && m != nil {
				m.stop()
				os.RemoveAll(filepath.Join(root, "fresh"))
			}
			if err != nil {
				return err
			}
			for _, r := range rs {
				r.Run = run
				targets[p.target].Results = append(targets[p.target].Results, r)
			}
		}
	}
	return nil
}

// runWorkload runs w once on the mount m, or on the plain disk at native
// when m is nil.
func runWorkload(ctx context.Context, w bench.Workload, m *benchMountPoint, native, prefix string, cfg bench.Config, progress io.Writer) ([]bench.Result, error) {
	name, dir := "native", native
	if m != nil {
		name, dir, cfg.Settle = m.name, m.mnt, m.flush
	}
	fmt.Fprintf(progress, "bench: %s%s: %s…\n", prefix, name, w.Name)
	rs, err := w.Run(ctx, dir, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", w.Name, name, err)
	}
	if m != nil {
		// Replicating what the workload wrote must not overlap the next
		// measurement, native or not.
		if err := m.flush(); err != nil {
			return nil, err
		}
	}
	return rs, nil
}
