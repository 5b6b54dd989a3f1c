package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walfs/walfs/cmd/internal/bench"
	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/s3backend"
)

// benchMountPoint is a temporary mount served by a child process (a
// process must not do I/O on a mount it serves itself): a walfs mount, or
// the bare go-fuse loopback of --floor (replica "").
type benchMountPoint struct {
	name, mnt, replica string
	exe                string
	pid                int
	started, appeared  time.Time // when the child was started; when the mount appeared
	// stop unmounts (flushing first, for up to unmountWait) and waits for
	// the child to exit; calls after the first do nothing.
	stop        func()
	unmountWait time.Duration
	// fresh starts a mount like this one over a new data dir under dir,
	// for a workload that wants one (Workload.Fresh); nil where such
	// workloads do not run (a --replica mount).
	fresh func(dir string) (*benchMountPoint, error)
}

// startBenchMount starts `walfs mount` on data at mnt and waits up to
// within for the mount to appear. Its log goes to mnt's sibling mount.log.
func startBenchMount(name, data, mnt, replica, capture string, within time.Duration) (*benchMountPoint, error) {
	unmount := func(m *benchMountPoint, _ *os.Process) {
		exec.Command(m.exe, "unmount", "--timeout", m.unmountWait.String(), m.mnt).Run()
	}
	args := []string{"mount", "--data-dir", data, "--replica", replica, "--capture", capture, mnt}
	m, err := startMountChild("walfs mount", name, mnt, args, within, unmount, nil)
	if err != nil {
		return nil, err
	}
	m.replica = replica
	m.fresh = func(dir string) (*benchMountPoint, error) {
		return startBenchMount(name, filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), "file://"+filepath.Join(dir, "replica"), capture, within)
	}
	return m, nil
}

// startMountChild starts this executable with args, a child (what, for
// errors) that serves a mount at mnt, and waits up to within for the mount
// to appear. Its output goes to mnt's sibling mount.log. The mount's stop
// calls unmount, waits for the child to exit (killing it after unmountWait
// and 10 s more), then calls exited, if set.
func startMountChild(what, name, mnt string, args []string, within time.Duration, unmount func(*benchMountPoint, *os.Process), exited func()) (*benchMountPoint, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(mnt)
	logPath := filepath.Join(dir, "mount.log")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	m := &benchMountPoint{name: name, mnt: mnt, exe: exe, started: time.Now(), unmountWait: 60 * time.Second}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	m.pid = cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	m.stop = func() {
		once.Do(func() {
			unmount(m, cmd.Process)
			select {
			case <-done:
			case <-time.After(m.unmountWait + 10*time.Second):
				cmd.Process.Kill()
				<-done
			}
			if ok, _ := fusefs.IsMountPoint(mnt); ok {
				syscall.Unmount(mnt, syscall.MNT_DETACH) // a killed or crashed daemon leaves its mount behind
			}
			logf.Close()
			if exited != nil {
				exited()
			}
		})
	}
	deadline := m.started.Add(within)
	for {
		if ok, _ := fusefs.IsMountPoint(mnt); ok {
			m.appeared = time.Now()
			return m, nil
		}
		select {
		case err := <-done:
			logf.Close()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited: %v: %s", what, err, strings.TrimSpace(string(log)))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			syscall.Unmount(mnt, syscall.MNT_DETACH)
			logf.Close()
			return nil, fmt.Errorf("%s: mount did not appear within %s (log: %s)", what, within, logPath)
		}
	}
}

// flush waits until the replica holds everything committed in the mount
// (nothing to wait for on a mount without a replica).
func (m *benchMountPoint) flush() error {
	if m.replica == "" {
		return nil
	}
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
	sparse, err := bench.Lag(ctx, "sparse commits (one per 1.2 s)", m.mnt, store, "lag-sparse.db", probes, 1, 1200*time.Millisecond, m.flush, nil)
	if err != nil {
		return fmt.Errorf("lag on %s: %w", m.name, err)
	}
	captured := func() (uint64, error) {
		rep, err := fetchStatus(ctx, m.mnt)
		if err != nil {
			return 0, err
		}
		for _, d := range rep.Databases {
			if d.DB == "lag-load.db" {
				return d.LocalTXID, nil
			}
		}
		return 0, fmt.Errorf("walfs status of %s does not list lag-load.db", m.mnt)
	}
	loaded, err := bench.Lag(ctx, "under load (every 100th commit timed)", m.mnt, store, "lag-load.db", probes, 100, 0, m.flush, captured)
	if err != nil {
		return fmt.Errorf("lag on %s: %w", m.name, err)
	}
	t.Lag = []bench.LagResult{sparse, loaded}
	return nil
}

// rssResult is walfs's memory while a large database is written and replicated.
type rssResult struct {
	DBMB      int     `json:"db_mb"`
	PeakMB    float64 `json:"peak_rss_mb"`
	Seconds   float64 `json:"seconds"`
	SampledMB []int   `json:"rss_mb_every_second"`
}

// rssSampler samples a process's resident memory every 100 ms until stopped.
type rssSampler struct {
	stop, done chan struct{}
	peakKB     int
	everySecMB []int
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			kb := rssKB(pid)
			s.peakKB = max(s.peakKB, kb)
			if i%10 == 0 {
				s.everySecMB = append(s.everySecMB, kb>>10)
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// end stops sampling; the fields may be read after it returns.
func (s *rssSampler) end() {
	close(s.stop)
	<-s.done
}

// measureRSS writes a database of mb MiB through the mount and waits until
// the replica holds it, sampling the mount process's resident memory.
func measureRSS(ctx context.Context, pid int, mnt string, mb int, flush func() error) (*rssResult, error) {
	s := sampleRSS(pid)
	start := time.Now()
	err := bench.Fill(ctx, mnt, mb)
	if err == nil {
		err = flush()
	}
	elapsed := time.Since(start)
	s.end()
	return &rssResult{DBMB: mb, PeakMB: float64(s.peakKB) / 1024, Seconds: elapsed.Seconds(), SampledMB: s.everySecMB}, err
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
