package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"

	"github.com/walfs/walfs/cmd/internal/bench"
)

// ratioSummary is the speed ratio of one row over the runs: a mount's
// against native (for times native/mount: 1 is native speed, higher is
// better), or walfs's against the floor.
type ratioSummary struct {
	Workload string  `json:"workload"`
	Runs     int     `json:"runs"`
	Min      float64 `json:"min"`
	Median   float64 `json:"median"`
	Max      float64 `json:"max"`
}

// benchRow is one line of the report: a row's values on every target.
type benchRow struct {
	name, unit string
	values     [][]float64 // per target, one per run, in run order
	// Per target, one per run both measured: against native (none for
	// native itself), and against the floor (walfs targets, with --floor).
	ratios, floorRatios [][]float64
}

// summarize groups the results by row, in the order they first appear, and
// fills each target's Ratios against native and, with a floor target, each
// walfs target's FloorRatios.
func summarize(targets []benchTarget) []*benchRow {
	var rows []*benchRow
	byName := map[string]*benchRow{}
	byRun := make([]map[string]map[int]float64, len(targets)) // target → row → run → value
	for t, tg := range targets {
		byRun[t] = map[string]map[int]float64{}
		for _, r := range tg.Results {
			row := byName[r.Workload]
			if row == nil {
				n := len(targets)
				row = &benchRow{name: r.Workload, unit: r.Unit, values: make([][]float64, n), ratios: make([][]float64, n), floorRatios: make([][]float64, n)}
				byName[r.Workload] = row
				rows = append(rows, row)
			}
			row.values[t] = append(row.values[t], r.Value)
			if byRun[t][r.Workload] == nil {
				byRun[t][r.Workload] = map[int]float64{}
			}
			byRun[t][r.Workload][r.Run] = r.Value
		}
	}
	// pair gives each row target of's ratios against target base, run by
	// run, in *slot, and returns their summaries in row order.
	pair := func(base, of int, slot func(*benchRow) *[]float64) []ratioSummary {
		for _, br := range targets[base].Results {
			v, ok := byRun[of][br.Workload][br.Run]
			if !ok || v == 0 || br.Value == 0 {
				continue
			}
			ratio := v / br.Value
			if br.LowerIsBetter {
				ratio = br.Value / v
			}
			rs := slot(byName[br.Workload])
			*rs = append(*rs, ratio)
		}
		var out []ratioSummary
		for _, row := range rows {
			if rs := *slot(row); len(rs) > 0 {
				out = append(out, ratioSummary{Workload: row.name, Runs: len(rs), Min: slices.Min(rs), Median: median(rs), Max: slices.Max(rs)})
			}
		}
		return out
	}
	floor := slices.IndexFunc(targets, func(t benchTarget) bool { return t.Floor })
	for t := 1; t < len(targets); t++ {
		targets[t].Ratios = pair(0, t, func(r *benchRow) *[]float64 { return &r.ratios[t] })
		targets[t].FloorRatios = nil
		if floor > 0 && t != floor {
			targets[t].FloorRatios = pair(floor, t, func(r *benchRow) *[]float64 { return &r.floorRatios[t] })
		}
	}
	return rows
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printBench prints the report: native first, then the floor (if any),
// then each walfs mount, each with its ratio against native, and with a
// floor each walfs mount's ratio against it ("vs floor").
func printBench(w io.Writer, targets []benchTarget, rows []*benchRow, runs int) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	ratioHead, floorHead := "ratio", "vs floor"
	if runs > 1 {
		ratioHead += " min / median / max"
		floorHead += " min / median / max"
	}
	floor := slices.IndexFunc(targets, func(t benchTarget) bool { return t.Floor })
	order := []int{0}
	if floor > 0 {
		order = append(order, floor)
	}
	for t := 1; t < len(targets); t++ {
		if t != floor {
			order = append(order, t)
		}
	}
	header := "workload\tunit"
	for _, t := range order {
		header += "\t" + targets[t].Name
		if t > 0 {
			header += "\t" + ratioHead
		}
		if floor > 0 && t > 0 && t != floor {
			header += "\t" + floorHead
		}
	}
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		line := row.name + "\t" + row.unit
		for _, t := range order {
			line += "\t" + formatValue(row.values[t], row.unit)
			if t > 0 {
				line += "\t" + formatRatios(row.ratios[t], runs)
			}
			if floor > 0 && t > 0 && t != floor {
				line += "\t" + formatRatios(row.floorRatios[t], runs)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "ratio: speed in the mount / speed on the plain disk (for times: native time / mount time); 1.00× is native speed.")
	if floor > 0 {
		fmt.Fprintf(w, "vs floor: walfs's speed / the %s's (for times: its time / walfs's); 1.00× is as fast as go-fuse's own loopback, mounted as walfs is.\n", targets[floor].Name)
	}
	if runs > 1 {
		fmt.Fprintf(w, "Values are medians of %d runs; each ratio pairs the figures of one run.\n", runs)
	}
	if floor > 0 {
		if r := targets[floor].Requests; r != nil {
			fmt.Fprintf(w, "%s: %s files opened, %s by passthrough; %s READ, %s WRITE, %s FSYNC requests reached its process.\n", targets[floor].Name,
				bench.Thousands(int(r.Opens)), bench.Thousands(int(r.PassthroughOpens)), bench.Thousands(int(r.Reads)), bench.Thousands(int(r.Writes)), bench.Thousands(int(r.Fsyncs)))
		}
	}
	for _, t := range targets[1:] {
		if r := t.RSS; r != nil {
			fmt.Fprintf(w, "%s, memory while a %d MiB database was written and replicated (%.0f s): peak RSS %.0f MiB\n", t.Name, r.DBMB, r.Seconds, r.PeakMB)
		}
		for _, l := range t.Lag {
			fmt.Fprintf(w, "%s, lag %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d commits)\n", t.Name, l.Name, l.P50ms, l.P99ms, l.Maxms, l.Commits)
		}
	}
}

// formatRatios prints one cell of ratios: the one ratio, or min / median /
// max over the runs.
func formatRatios(rs []float64, runs int) string {
	switch {
	case len(rs) == 0:
		return "—"
	case runs == 1:
		return fmt.Sprintf("%.2f×", rs[0])
	default:
		return fmt.Sprintf("%.2f / %.2f / %.2f×", slices.Min(rs), median(rs), slices.Max(rs))
	}
}

// formatValue prints the median of a row's values on one target.
func formatValue(vs []float64, unit string) string {
	if len(vs) == 0 {
		return "—"
	}
	v := median(vs)
	switch {
	case unit == "s" && v < 10:
		return fmt.Sprintf("%.3f", v)
	case v >= 100:
		return bench.Thousands(int(math.Round(v)))
	default:
		return fmt.Sprintf("%.1f", v)
	}
}
