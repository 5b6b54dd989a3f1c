package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walfs/walfs/cmd/internal/bench"
	"github.com/walfs/walfs/fusefs"
)

// envRunWalfs makes the test binary run walfs itself (main) instead of the
// tests: for code that starts walfs as a child process through
// os.Executable (the bench's mounts).
const envRunWalfs = "WALFS_TEST_RUN_WALFS"

func TestMain(m *testing.M) {
	if os.Getenv(envRunWalfs) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// requireMount skips a test that mounts unless the process is root with
// /dev/fuse; WALFS_TEST_DISALLOW_SKIP=1 (CI) turns the skip into a failure.
func requireMount(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err == nil && os.Geteuid() == 0 {
		return
	}
	if os.Getenv("WALFS_TEST_DISALLOW_SKIP") == "1" {
		t.Fatal("needs root and /dev/fuse (WALFS_TEST_DISALLOW_SKIP=1 forbids skipping)")
	}
	t.Skip("needs root and /dev/fuse")
}

// TestBenchSummary checks the report's arithmetic: ratios pair the native
// and mount figures of the same run, times invert the ratio, values are
// medians, and rows only a mount has get no ratio.
func TestBenchSummary(t *testing.T) {
	rate := func(run int, v float64) bench.Result {
		return bench.Result{Workload: "rate", Unit: "tx/s", Value: v, Run: run}
	}
	dur := func(run int, v float64) bench.Result {
		return bench.Result{Workload: "time", Unit: "s", Value: v, LowerIsBetter: true, Run: run}
	}
	targets := []benchTarget{
		{Name: "native", Results: []bench.Result{rate(1, 100), dur(1, 1), rate(2, 200), dur(2, 2), rate(3, 100), dur(3, 4)}},
		{Name: "walfs", Results: []bench.Result{
			// Run 2 first: pairing is by run, not by position.
			rate(2, 100), dur(2, 4), rate(1, 90), dur(1, 2), rate(3, 70), dur(3, 4),
			{Workload: "memory", Unit: "MiB", Value: 50, LowerIsBetter: true, Run: 1},
		}},
	}
	rows := summarize(targets)
	if got := len(rows); got != 3 {
		t.Fatalf("%d rows, want 3", got)
	}
	want := []ratioSummary{
		{Workload: "rate", Runs: 3, Min: 0.5, Median: 0.7, Max: 0.9},
		{Workload: "time", Runs: 3, Min: 0.5, Median: 0.5, Max: 1},
	}
	got := targets[1].Ratios
	if len(got) != len(want) {
		t.Fatalf("ratios %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Workload != w.Workload || g.Runs != w.Runs || !near(g.Min, w.Min) || !near(g.Median, w.Median) || !near(g.Max, w.Max) {
			t.Errorf("ratio %d = %+v, want %+v", i, g, w)
		}
	}

	var out bytes.Buffer
	printBench(&out, targets, rows, 3)
	lines := strings.Split(out.String(), "\n")
	for _, want := range []struct{ prefix, fields string }{
		{"rate", "tx/s 100 90.0 0.50 / 0.70 / 0.90×"},
		{"time", "s 2.000 4.000 0.50 / 0.50 / 1.00×"},
		{"memory", "MiB — 50.0 —"},
	} {
		found := false
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == want.prefix {
				found = true
				if got := strings.Join(f[1:], " "); got != want.fields {
					t.Errorf("row %s: %q, want %q", want.prefix, got, want.fields)
				}
			}
		}
		if !found {
			t.Errorf("no row %s in\n%s", want.prefix, out.String())
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// The floor of walfs bench --floor: a child process serving a bare go-fuse
// loopback. A file written through it lands on the backing dir byte for
// byte and reads back; stopping it (SIGTERM) or unmounting it from outside
// ends the child cleanly (it reports its request counts only then) and
// leaves no mount behind.
func TestFloorMount(t *testing.T) {
	requireMount(t)
	t.Setenv(envRunWalfs, "1") // the child is this test binary, as walfs
	reqs := &floorRequests{}
	for i, how := range []string{"stop", "umount"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
			m, err := startFloorMount(floorName, data, mnt, reqs, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer m.stop()
			want := []byte(strings.Repeat("through the floor\n", 500))
			if err := os.WriteFile(filepath.Join(mnt, "f"), want, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || !bytes.Equal(got, want) {
				t.Errorf("read through the mount: %d bytes, %v; want %d bytes", len(got), err, len(want))
			}
			if got, err := os.ReadFile(filepath.Join(data, "f")); err != nil || !bytes.Equal(got, want) {
				t.Errorf("on the backing dir: %d bytes, %v; want %d bytes", len(got), err, len(want))
			}
			if how == "umount" {
				// The kernel may still hold the file just read (its RELEASE
				// is sent asynchronously): EBUSY for a moment.
				err := syscall.Unmount(mnt, 0)
				for try := 0; err == syscall.EBUSY && try < 100; try++ {
					time.Sleep(20 * time.Millisecond)
					err = syscall.Unmount(mnt, 0)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			m.stop()
			if reqs.n != i+1 {
				t.Errorf("%d loopback processes reported their counts, want %d (did the child exit by itself? log: %s)", reqs.n, i+1, readLog(mnt))
			}
			if mounted(t, mnt) {
				t.Errorf("%s is still mounted", mnt)
				syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
		})
	}
	if reqs.sum.Opens < 4 {
		t.Errorf("counts %+v: want at least 4 opens", reqs.sum)
	}
	t.Logf("floor named %q after %+v", reqs.name(predictedFloorName()), reqs.sum)
}

// readLog returns the log of the bench mount at mnt.
func readLog(mnt string) string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(mnt), "mount.log"))
	return string(b)
}

// mounted reports whether /proc/mounts lists path as a mount point.
func mounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == path {
			return true
		}
	}
	return false
}

// The floor is named for what the kernel did with its files.
func TestFloorName(t *testing.T) {
	for _, c := range []struct {
		stats []fusefs.LoopbackStats
		want  string
	}{
		{nil, "predicted"},
		{[]fusefs.LoopbackStats{{}}, "predicted"},
		{[]fusefs.LoopbackStats{{Opens: 3, PassthroughOpens: 3}, {Opens: 2, PassthroughOpens: 2}}, floorName},
		{[]fusefs.LoopbackStats{{Opens: 3, Reads: 5, Writes: 7}}, floorName + " (no passthrough)"},
		{[]fusefs.LoopbackStats{{Opens: 3, PassthroughOpens: 3}, {Opens: 2}}, floorName + " (passthrough for 3 of 5 opens)"},
	} {
		reqs := &floorRequests{}
		for _, st := range c.stats {
			reqs.add(st)
		}
		if got := reqs.name("predicted"); got != c.want {
			t.Errorf("%+v: %q, want %q", c.stats, got, c.want)
		}
	}
}

// With a floor target the report shows it after native, and each walfs
// target's ratio against it run by run (times inverted), with the same
// min / median / max as the ratios against native.
func TestBenchSummaryFloor(t *testing.T) {
	rate := func(run int, v float64) bench.Result {
		return bench.Result{Workload: "rate", Unit: "tx/s", Value: v, Run: run}
	}
	dur := func(run int, v float64) bench.Result {
		return bench.Result{Workload: "time", Unit: "s", Value: v, LowerIsBetter: true, Run: run}
	}
	targets := []benchTarget{
		{Name: "native", Results: []bench.Result{rate(1, 100), dur(1, 1), rate(2, 100), dur(2, 1), rate(3, 100), dur(3, 1)}},
		{Name: "walfs", Results: []bench.Result{
			rate(1, 40), dur(1, 4), rate(2, 60), dur(2, 2), rate(3, 45), dur(3, 3),
			{Workload: "memory", Unit: "MiB", Value: 50, LowerIsBetter: true, Run: 1},
		}},
		{Name: "floor", Floor: true, Results: []bench.Result{rate(1, 80), dur(1, 2), rate(2, 60), dur(2, 2), rate(3, 90), dur(3, 1)}},
	}
	rows := summarize(targets)
	check := func(what string, got, want []ratioSummary) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s %+v, want %+v", what, got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Workload != w.Workload || g.Runs != w.Runs || !near(g.Min, w.Min) || !near(g.Median, w.Median) || !near(g.Max, w.Max) {
				t.Errorf("%s %d = %+v, want %+v", what, i, g, w)
			}
		}
	}
	check("walfs vs floor", targets[1].FloorRatios, []ratioSummary{
		{Workload: "rate", Runs: 3, Min: 0.5, Median: 0.5, Max: 1},     // 40/80, 60/60, 45/90
		{Workload: "time", Runs: 3, Min: 1.0 / 3, Median: 0.5, Max: 1}, // 2/4, 2/2, 1/3
	})
	check("floor vs native", targets[2].Ratios, []ratioSummary{
		{Workload: "rate", Runs: 3, Min: 0.6, Median: 0.8, Max: 0.9},
		{Workload: "time", Runs: 3, Min: 0.5, Median: 0.5, Max: 1},
	})
	if targets[2].FloorRatios != nil || targets[0].FloorRatios != nil {
		t.Errorf("floor ratios on native or the floor itself: %+v, %+v", targets[0].FloorRatios, targets[2].FloorRatios)
	}

	var out bytes.Buffer
	printBench(&out, targets, rows, 3)
	lines := strings.Split(out.String(), "\n")
	if got, want := strings.Join(strings.Fields(lines[0]), " "), "workload unit native floor ratio min / median / max walfs ratio min / median / max vs floor min / median / max"; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	for _, want := range []struct{ prefix, fields string }{
		// native, floor and its ratio, walfs and its ratio, walfs vs floor
		{"rate", "tx/s 100 80.0 0.60 / 0.80 / 0.90× 45.0 0.40 / 0.45 / 0.60× 0.50 / 0.50 / 1.00×"},
		{"time", "s 1.000 2.000 0.50 / 0.50 / 1.00× 3.000 0.25 / 0.33 / 0.50× 0.33 / 0.50 / 1.00×"},
		{"memory", "MiB — — — 50.0 — —"},
	} {
		found := false
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == want.prefix {
				found = true
				if got := strings.Join(f[1:], " "); got != want.fields {
					t.Errorf("row %s: %q, want %q", want.prefix, got, want.fields)
				}
			}
		}
		if !found {
			t.Errorf("no row %s in\n%s", want.prefix, out.String())
		}
	}
	if !strings.Contains(out.String(), "vs floor: walfs's speed / the floor's") {
		t.Errorf("no note on vs floor in\n%s", out.String())
	}
}
