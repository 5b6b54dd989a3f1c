package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/walfs/walfs/cmd/internal/bench"
)

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
