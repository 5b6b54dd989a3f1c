package s3backend

import (
	"context"
	"sync"
	"time"
)

// rateLimiter spaces requests at most rps per second apart, with a burst of
// one. Providers publish their limits per second, so a simple pacer is enough
// and keeps s3backend free of an extra dependency.
type rateLimiter struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

func newRateLimiter(rps float64) *rateLimiter {
	if rps <= 0 {
		return nil
	}
	return &rateLimiter{interval: time.Duration(float64(time.Second) / rps)}
}

// reserve books the next slot at or after now and returns its start.
func (l *rateLimiter) reserve(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	return at
}

// wait blocks until the caller may send one request or ctx ends.
func (l *rateLimiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	d := time.Until(l.reserve(time.Now()))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
