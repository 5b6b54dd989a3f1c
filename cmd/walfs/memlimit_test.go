package main

import "testing"

// The limit never sits at or under the live heap, and is the fixed one for
// a small heap.
func TestMemoryLimitFor(t *testing.T) {
	for _, live := range []uint64{0, 1 << 20, 40 << 20, 42 << 20, 43 << 20, 64 << 20, 75 << 20, 300 << 20, 5 << 30} {
		got := memoryLimitFor(live)
		if got < defaultMemoryLimit {
			t.Errorf("live %d MiB: limit %d MiB, under the default", live>>20, got>>20)
		}
		if float64(got) < float64(live)*liveHeadroom {
			t.Errorf("live %d MiB: limit %d MiB leaves less than %.1fx", live>>20, got>>20, liveHeadroom)
		}
		if got%(8<<20) != 0 && got != defaultMemoryLimit {
			t.Errorf("live %d MiB: limit %d not in 8 MiB steps", live>>20, got)
		}
	}
	if got := memoryLimitFor(10 << 20); got != defaultMemoryLimit {
		t.Errorf("small heap: limit %d, want the default %d", got, defaultMemoryLimit)
	}
	if got := memoryLimitFor(100 << 20); got != 152<<20 {
		t.Errorf("100 MiB live: limit %d MiB, want 152", got>>20)
	}
}
