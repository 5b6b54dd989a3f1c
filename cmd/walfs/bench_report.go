package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"

	"github.com/walfs/walfs/cmd/internal/bench"
)

// ratioSummary is the speed ratio mount/native of one row over the runs
// (for times native/mount: 1 is native speed, higher is better).
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
	ratios     [][]float64 // per mount target (target-1), one per run both measured
}

// summarize groups the results by row, in the order they first appear, and
// fills each mount target's Ratios.
func summarize(targets []benchTarget) []*benchRow {
	var rows []*benchRow
	byName := map[string]*benchRow{}
	byRun := make([]map[string]map[int]float64, len(targets)) // target → row → run → value
	for t, tg := range targets {
		byRun[t] = map[string]map[int]float64{}
		for _, r := range tg.Results {
			row := byName[r.Workload]
			if row == nil {
				row = &benchRow{name: r.Workload, unit: r.Unit, values: make([][]float64, len(targets)), ratios: make([][]float64, len(targets)-1)}
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
	for t := 1; t < len(targets); t++ {
		targets[t].Ratios = nil
		for _, tr := range targets[0].Results {
			mv, ok := byRun[t][tr.Workload][tr.Run]
			if !ok || mv == 0 || tr.Value == 0 {
				continue
			}
			ratio := mv / tr.Value
			if tr.LowerIsBetter {
				ratio = tr.Value / mv
			}
			row := byName[tr.Workload]
			row.ratios[t-1] = append(row.ratios[t-1], ratio)
		}
		for _, row := range rows {
			if rs := row.ratios[t-1]; len(rs) > 0 {
				targets[t].Ratios = append(targets[t].Ratios, ratioSummary{Workload: row.name, Runs: len(rs), Min: slices.Min(rs), Median: median(rs), Max: slices.Max(rs)})
			}
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

func printBench(w io.Writer, targets []benchTarget, rows []*benchRow, runs int) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	ratioHead := "ratio"
	if runs > 1 {
		ratioHead = "ratio min / median / max"
	}
	header := "workload\tunit"
	for _, t := range targets {
		header += "\t" + t.Name
		if t.Name != "native" {
			header += "\t" + ratioHead
		}
	}
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		line := row.name + "\t" + row.unit
		for t := range targets {
			line += "\t" + formatValue(row.values[t], row.unit)
			if t == 0 {
				continue
			}
			switch rs := row.ratios[t-1]; {
			case len(rs) == 0:
				line += "\t—"
			case runs == 1:
				line += fmt.Sprintf("\t%.2f×", rs[0])
			default:
				line += fmt.Sprintf("\t%.2f / %.2f / %.2f×", slices.Min(rs), median(rs), slices.Max(rs))
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "ratio: speed in the mount / speed on the plain disk (for times: native time / mount time); 1.00× is native speed.")
	if runs > 1 {
		fmt.Fprintf(w, "Values are medians of %d runs; each ratio pairs the native and mount figures of one run.\n", runs)
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
