package replicate

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when a test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	changed chan struct{} // closed and replaced whenever waiters change
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	c.notify()
	return ch
}

func (c *fakeClock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitWaiters blocks until at least n goroutines wait on the clock.
func (c *fakeClock) waitWaiters(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got, ch := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("fake clock: %d goroutines waiting, want %d", got, n)
		}
	}
}

// advance moves the clock forward by d, firing the waiters it passes in
// order. After each firing it waits until n goroutines wait again, so that
// every loop has finished what that moment asked of it.
func (c *fakeClock) advance(t testing.TB, d time.Duration, n int) {
	t.Helper()
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		first := -1
		for i, w := range c.waiters {
			if !w.at.After(target) && (first < 0 || w.at.Before(c.waiters[first].at)) {
				first = i
			}
		}
		if first < 0 {
			c.now = target
			c.mu.Unlock()
			return
		}
		w := c.waiters[first]
		c.waiters = append(c.waiters[:first], c.waiters[first+1:]...)
		if w.at.After(c.now) {
			c.now = w.at
		}
		w.ch <- c.now
		c.notify()
		c.mu.Unlock()
		c.waitWaiters(t, n)
	}
}

// set moves the clock to t without firing anything (synchronous drivers).
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
