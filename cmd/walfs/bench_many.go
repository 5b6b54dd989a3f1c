package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/walfs/walfs/cmd/internal/bench"
)

// manyDBsWait bounds each step of the many-databases rows: a mount over
// thousands of databases may take minutes to appear, sync or unmount, and
// the rows exist to show how long.
const manyDBsWait = 15 * time.Minute

// benchManyDBs measures what n small databases cost a mount (file replica,
// fresh data dir, under dir):
//   - memory: walfs's RSS after n databases were created through one mount
//     and replicated, total and per database above the idle mount's;
//   - start-up: the time from starting `walfs mount` until a database in it
//     takes a write, over a data dir that holds n databases created on the
//     plain disk, with an empty replica (first mount) and again after an
//     unmount (restart).
//
// Its rows exist only for a mount: they have no native figure.
func benchManyDBs(ctx context.Context, dir string, n int, capture string, cfg bench.Config, progress io.Writer) ([]bench.Result, error) {
	defer os.RemoveAll(dir)
	var out []bench.Result
	rssName := fmt.Sprintf("walfs RSS, %s small dbs written through one mount", bench.Thousands(n))
	if cfg.Selected(rssName) {
		rs, err := benchManyRSS(ctx, filepath.Join(dir, "rss"), n, capture, rssName, progress)
		if err != nil {
			return nil, fmt.Errorf("memory with %d databases: %w", n, err)
		}
		out = append(out, rs...)
	}
	startName := fmt.Sprintf("mount usable over %s dbs", bench.Thousands(n))
	if cfg.Selected(startName) {
		rs, err := benchManyStart(ctx, filepath.Join(dir, "start"), n, capture, startName, progress)
		if err != nil {
			return nil, fmt.Errorf("mount over %d databases: %w", n, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

func benchManyRSS(ctx context.Context, dir string, n int, capture, name string, progress io.Writer) ([]bench.Result, error) {
	m, err := startBenchMount("many", filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), "file://"+filepath.Join(dir, "replica"), capture, time.Minute)
	if err != nil {
		return nil, err
	}
	m.unmountWait = manyDBsWait
	defer m.stop()
	idle := rssKB(m.pid)
	fmt.Fprintf(progress, "bench: walfs: creating %d small databases through one mount (idle RSS %.0f MiB)…\n", n, float64(idle)/1024)
	s := sampleRSS(m.pid)
	elapsed, err := bench.CreateSmall(ctx, filepath.Join(m.mnt, "dbs"), n)
	if err == nil {
		err = m.flush()
	}
	s.end()
	if err != nil {
		return nil, err
	}
	after := rssKB(m.pid)
	peak := max(s.peakKB, after)
	fmt.Fprintf(progress, "bench: walfs: %d databases created in %.1f s; RSS %.0f MiB after sync, peak %.0f MiB\n",
		n, elapsed.Seconds(), float64(after)/1024, float64(peak)/1024)
	return []bench.Result{
		mountOnly(name+" (after sync)", "MiB", float64(after)/1024),
		mountOnly(name+" (peak)", "MiB", float64(peak)/1024),
		mountOnly(name+" (per db, above idle)", "KiB", float64(after-idle)/float64(n)),
	}, nil
}

func benchManyStart(ctx context.Context, dir string, n int, capture, name string, progress io.Writer) ([]bench.Result, error) {
	data, mnt, replica := filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), "file://"+filepath.Join(dir, "replica")
	fmt.Fprintf(progress, "bench: creating %d small databases on the plain disk…\n", n)
	if _, err := bench.CreateSmall(ctx, filepath.Join(data, "dbs"), n); err != nil {
		return nil, err
	}
	probe := filepath.Join(mnt, "dbs", bench.SmallName(n-1))
	var out []bench.Result
	for _, phase := range []string{"first mount, empty replica", "restart"} {
		fmt.Fprintf(progress, "bench: walfs: mount over %d databases (%s)…\n", n, phase)
		m, err := startBenchMount("many", data, mnt, replica, capture, manyDBsWait)
		if err != nil {
			return nil, err
		}
		m.unmountWait = manyDBsWait
		usable, err := waitUsable(m, probe, manyDBsWait)
		if err != nil {
			m.stop()
			return nil, err
		}
		out = append(out,
			mountOnly(fmt.Sprintf("%s (%s): mount appears", name, phase), "s", m.appeared.Sub(m.started).Seconds()),
			mountOnly(fmt.Sprintf("%s (%s): a db takes a write", name, phase), "s", usable.Sub(m.started).Seconds()))
		err = m.flush()
		replicated := time.Since(m.started)
		m.stop()
		if err != nil {
			return nil, err
		}
		out = append(out, mountOnly(fmt.Sprintf("%s (%s): replica holds every db", name, phase), "s", replicated.Seconds()))
		fmt.Fprintf(progress, "bench: walfs: appeared after %.1f s, usable after %.1f s, replica complete after %.1f s\n",
			m.appeared.Sub(m.started).Seconds(), usable.Sub(m.started).Seconds(), replicated.Seconds())
	}
	return out, nil
}

// waitUsable retries a write to the database at probe (in m's mount) until
// one succeeds, and returns when.
func waitUsable(m *benchMountPoint, probe string, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		err := bench.WriteSmall(probe)
		if err == nil {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no write to %s succeeded within %s: %w", probe, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountOnly is a figure that exists only for a mount (lower is better).
func mountOnly(name, unit string, v float64) bench.Result {
	return bench.Result{Workload: name, Unit: unit, Value: v, LowerIsBetter: true}
}
