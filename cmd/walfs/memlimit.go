package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// defaultMemoryLimit is the least soft heap limit of a mount. Go otherwise
// lets the heap grow to twice what is live before collecting, and a mount's
// garbage is mostly short-lived page buffers: a 2 GB database written
// through the mount peaked near 105 MB RSS without a limit and 78 MB with
// it.
const defaultMemoryLimit = 64 << 20

// liveHeadroom is how far above the live heap the limit stays: a limit at
// or under what is live makes the collector run back to back (it held one
// of the two cores with 7,000 databases in a mount, and creating databases
// slowed from 70 to 23 a second). 1.5x the live heap is GOGC=50 for a large
// heap and the fixed limit for a small one.
const liveHeadroom = 1.5

// memoryTuneEvery is how often the limit follows the live heap.
const memoryTuneEvery = 2 * time.Second

// limitMemory sets the soft heap limit, unless GOMEMLIMIT chose one, and
// keeps it above the live heap until ctx ends.
func limitMemory(ctx context.Context, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
	log.Debug("soft memory limit", "bytes", defaultMemoryLimit, "headroom_over_live", liveHeadroom, "override", "GOMEMLIMIT")
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		limit := int64(defaultMemoryLimit)
		t := time.NewTicker(memoryTuneEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return // not measured by this Go: keep the fixed limit
			}
			if want := memoryLimitFor(sample[0].Value.Uint64()); want != limit {
				limit = want
				debug.SetMemoryLimit(limit)
			}
		}
	}()
}

// memoryLimitFor is the soft heap limit for a live heap of live bytes:
// defaultMemoryLimit, or liveHeadroom times live when that is more, in
// steps of 8 MiB so that it does not move with every sample.
func memoryLimitFor(live uint64) int64 {
	const step = 8 << 20
	want := int64(float64(live) * liveHeadroom)
	want = (want + step - 1) / step * step
	return max(defaultMemoryLimit, want)
}
