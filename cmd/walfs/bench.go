package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/cmd/internal/bench"
	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/s3backend"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure SQLite through a walfs mount against the plain disk under it",
		Description: "Runs standard SQLite workloads (modernc.org/sqlite) in a plain directory and in a temporary\n" +
			"walfs mount over the same file system (file replica; then --replica if given), and prints\n" +
			"absolute figures and mount/native ratios:\n" +
			"  1-row transactions (synchronous=NORMAL and FULL), 1,000-row transactions, random point\n" +
			"  reads on a --read-db-mb database, --writers concurrent writers, and commit-to-store lag\n" +
			"  (p50/p99) for sparse commits and under load.\n" +
			"Run it on your own hardware; we run it before and after every change to the write path.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: os.TempDir(), Usage: "directory on the file system to measure (a temporary subdirectory is created and removed)"},
			&cli.StringFlag{Name: "replica", Usage: "also measure with this replica URL (e.g. an S3 bucket); credentials as for walfs mount"},
			&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, Usage: "how long each timed workload runs"},
			&cli.IntFlag{Name: "read-db-mb", Value: 200, Usage: "size of the point-read database in MiB"},
			&cli.IntFlag{Name: "writers", Value: 4, Usage: "connections in the concurrent-writers workload"},
			&cli.IntFlag{Name: "lag-probes", Value: 25, Usage: "commits timed per lag measurement (sparse ones are 1.2 s apart)"},
			&cli.IntFlag{Name: "rss-db-mb", Usage: "also write a database of this many MiB through the mount and report walfs's peak memory (RSS) while it is written and replicated"},
			&cli.StringFlag{Name: "capture", Value: "auto", Usage: "capture path of the measured mounts: auto, passthrough or userspace (as for walfs mount)"},
			&cli.StringFlag{Name: "only", Usage: "run only the workloads whose name contains this text (\"lag\" for the lag measurements)"},
			&cli.BoolFlag{Name: "json", Usage: "print results as JSON"},
		},
		Action: runBench,
	}
}

type benchTarget struct {
	Name    string            `json:"name"`
	Results []bench.Result    `json:"results"`
	Lag     []bench.LagResult `json:"lag,omitempty"`
	Capture string            `json:"capture,omitempty"`
	RSS     *rssResult        `json:"rss,omitempty"`
}

// rssResult is walfs's memory while a large database is written and replicated.
type rssResult struct {
	DBMB      int     `json:"db_mb"`
	PeakMB    float64 `json:"peak_rss_mb"`
	Seconds   float64 `json:"seconds"`
	SampledMB []int   `json:"rss_mb_every_second"`
}

func runBench(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("bench takes no arguments (see walfs bench --help)")
	}
	root, err := os.MkdirTemp(c.String("dir"), "walfs-bench-")
	if err != nil {
		return fmt.Errorf("create bench dir in %s: %w (check --dir)", c.String("dir"), err)
	}
	defer os.RemoveAll(root)
	cfg := bench.Config{Duration: c.Duration("duration"), ReadDBMB: c.Int("read-db-mb"), Writers: c.Int("writers"), BatchRows: 1000, Only: c.String("only")}
	if cfg.Duration <= 0 || cfg.ReadDBMB <= 0 || cfg.Writers <= 0 {
		return usagef("--duration, --read-db-mb and --writers must be positive")
	}
	progress := c.App.ErrWriter
	capture := c.String("capture")
	if capture != "auto" && capture != "passthrough" && capture != "userspace" {
		return usagef("--capture %q: use auto, passthrough or userspace", capture)
	}

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
		m, err := startBenchMount(name, filepath.Join(root, fmt.Sprintf("m%d", i)), replica, capture)
		if err != nil {
			return err
		}
		mounts = append(mounts, m)
	}
	// Each workload runs on the plain disk and then on every mount before
	// the next workload starts, so that a change in the machine's load
	// (other jobs on a shared host) skews a ratio as little as possible.
	targets := []benchTarget{{Name: "native"}}
	for _, m := range mounts {
		targets = append(targets, benchTarget{Name: m.name})
	}
	for _, w := range bench.Standard() {
		if !cfg.Selected(w.Name) {
			continue
		}
		r, err := runWorkload(c.Context, w, "native", native, cfg, progress)
		if err != nil {
			return err
		}
		targets[0].Results = append(targets[0].Results, r)
		for i, m := range mounts {
			mcfg := cfg
			mcfg.Settle = m.flush
			r, err := runWorkload(c.Context, w, m.name, m.mnt, mcfg, progress)
			if err != nil {
				return err
			}
			targets[i+1].Results = append(targets[i+1].Results, r)
		}
	}
	for i, m := range mounts {
		if err := m.extras(c.Context, &targets[i+1], cfg, c.Int("lag-probes"), c.Int("rss-db-mb"), progress); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(targets)
	}
	printBench(c.App.Writer, targets)
	return nil
}

func runWorkload(ctx context.Context, w bench.Workload, name, dir string, cfg bench.Config, progress io.Writer) (bench.Result, error) {
	fmt.Fprintf(progress, "bench: %s: %s…\n", name, w.Name)
	ops, elapsed, err := w.Run(ctx, dir, cfg)
	if err != nil {
		return bench.Result{}, fmt.Errorf("%s on %s: %w", w.Name, name, err)
	}
	return bench.Result{Workload: w.Name, Unit: w.Unit, Ops: ops, Seconds: elapsed.Seconds(), Value: float64(ops) / elapsed.Seconds()}, nil
}

// benchMountPoint is a temporary walfs mount served by a child process (a
// process must not do I/O on a mount it serves itself).
type benchMountPoint struct {
	name, mnt, replica string
	exe                string
	pid                int
	stop               func()
}

func startBenchMount(name, dir, replica, capture string) (*benchMountPoint, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	logPath := filepath.Join(dir, "mount.log")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "mount", "--data-dir", data, "--replica", replica, "--capture", capture, mnt)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start walfs mount: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	m := &benchMountPoint{name: name, mnt: mnt, replica: replica, exe: exe, pid: cmd.Process.Pid}
	m.stop = func() {
		exec.Command(exe, "unmount", "--timeout", "60s", mnt).Run()
		select {
		case <-done:
		case <-time.After(70 * time.Second):
			cmd.Process.Kill()
		}
		logf.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, _ := fusefs.IsMountPoint(mnt); ok {
			return m, nil
		}
		select {
		case err := <-done:
			logf.Close()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("walfs mount exited: %v: %s", err, strings.TrimSpace(string(log)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			logf.Close()
			return nil, fmt.Errorf("mount did not appear within 30s")
		}
	}
}

// flush waits until the replica holds everything committed in the mount.
func (m *benchMountPoint) flush() error {
	out, err := exec.Command(m.exe, "sync", m.mnt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("walfs sync: %v: %s", err, out)
	}
	return nil
}

// extras measures what only a mount has: memory and commit-to-store lag.
func (m *benchMountPoint) extras(ctx context.Context, t *benchTarget, cfg bench.Config, probes, rssMB int, progress io.Writer) error {
	var err error
	if rssMB > 0 {
		fmt.Fprintf(progress, "bench: %s: memory while a %d MiB database is written and replicated…\n", m.name, rssMB)
		if t.RSS, err = measureRSS(ctx, m.pid, m.mnt, rssMB, m.flush); err != nil {
			return fmt.Errorf("memory on %s: %w", m.name, err)
		}
	}
	if !cfg.Selected("lag") {
		return nil
	}
	store, err := s3backend.New(ctx, s3backend.Config{URL: m.replica}, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "bench: %s: commit-to-store lag…\n", m.name)
	// Sparse: commits further apart than the default --sync-interval (1s), so
	// each one finds the uploader idle, as on a quiet production database.
	sparse, err := bench.Lag(ctx, "sparse commits (one per 1.2 s)", m.mnt, store, "lag-sparse.db", probes, 1, 1200*time.Millisecond, m.flush)
	if err != nil {
		return fmt.Errorf("lag on %s: %w", m.name, err)
	}
	loaded, err := bench.Lag(ctx, "under load (every 100th commit timed)", m.mnt, store, "lag-load.db", probes, 100, 0, m.flush)
	if err != nil {
		return fmt.Errorf("lag on %s: %w", m.name, err)
	}
	t.Lag = []bench.LagResult{sparse, loaded}
	return nil
}

// measureRSS writes a database of mb MiB through the mount and waits until
// the replica holds it, sampling the mount process's resident memory.
func measureRSS(ctx context.Context, pid int, mnt string, mb int, flush func() error) (*rssResult, error) {
	res := &rssResult{DBMB: mb}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	var peak int
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			kb := rssKB(pid)
			peak = max(peak, kb)
			if i%10 == 0 {
				res.SampledMB = append(res.SampledMB, kb>>10)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	err := bench.Fill(ctx, mnt, mb)
	if err == nil {
		err = flush()
	}
	res.Seconds = time.Since(start).Seconds()
	close(stop)
	<-sampled
	res.PeakMB = float64(peak) / 1024
	return res, err
}

// rssKB is the resident set of process pid in KiB (0 if unknown).
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return 0
}

func printBench(w io.Writer, targets []benchTarget) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	header := "workload\tunit"
	for _, t := range targets {
		header += "\t" + t.Name
		if t.Name != "native" {
			header += "\tratio"
		}
	}
	fmt.Fprintln(tw, header)
	for i, r := range targets[0].Results {
		line := fmt.Sprintf("%s\t%s\t%.0f", r.Workload, r.Unit, r.Value)
		for _, t := range targets[1:] {
			v := t.Results[i].Value
			line += fmt.Sprintf("\t%.0f\t%.2f×", v, v/r.Value)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, t := range targets[1:] {
		if r := t.RSS; r != nil {
			fmt.Fprintf(w, "%s, memory while a %d MiB database was written and replicated (%.0f s): peak RSS %.0f MiB\n", t.Name, r.DBMB, r.Seconds, r.PeakMB)
		}
		for _, l := range t.Lag {
			fmt.Fprintf(w, "%s, lag %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d commits)\n", t.Name, l.Name, l.P50ms, l.P99ms, l.Maxms, l.Commits)
		}
	}
}
