package replicate

import "time"

// Clock is the time source of the maintenance loops (compaction, snapshots,
// retention) and of the status they report. Tests inject a fake one so that
// schedules run deterministically, without sleeping.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
