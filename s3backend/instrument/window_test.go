package instrument

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The window's sum is the count of events in the last 60 minutes, for any
// sequence of events, also when the clock steps back.
func TestHourWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for round := range 50 {
		var w hourWindow
		var events []int64 // minutes of the events the window keeps
		now := base.Add(time.Duration(rng.IntN(1000)) * time.Minute)
		for range 300 {
			switch r := rng.IntN(10); {
			case r < 6:
				now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
			case r < 8:
				now = now.Add(time.Duration(rng.IntN(130)) * time.Minute)
			default:
				now = now.Add(-time.Duration(rng.IntN(70)) * time.Minute) // back
			}
			m := now.Unix() / 60
			if rng.IntN(3) > 0 {
				newest := m
				for _, e := range events {
					newest = max(newest, e)
				}
				if m > newest-60 {
					events = append(events, m)
				}
				w.add(now)
			}
			newest := int64(0)
			for _, e := range events {
				newest = max(newest, e)
			}
			var want uint64
			for _, e := range events {
				if e > m-60 && e <= m && e > newest-60 {
					want++
				}
			}
			if got := w.sum(now); got != want {
				t.Fatalf("round %d at %s: sum %d, want %d", round, now.Format(time.RFC3339), got, want)
			}
		}
	}
}
