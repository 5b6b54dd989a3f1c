package replicate

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// sched runs the background steps of many databases (the uploader's pass,
// the maintenance jobs) on at most limit goroutines, started only while a
// step is due, with one timer for all of them. A quiet database costs a
// task, and at most a place in the heap: no goroutine, no timer. With one
// goroutine per database and job loop, 10,000 quiet databases held 20,000
// goroutines and their stacks.
//
// A task's step runs on one goroutine at a time. It returns when it wants
// to run again: idle (negative) waits for the next wake, zero runs it again
// at once, a duration runs it after that long unless a wake comes first.
//
// mu guards everything below it and the scheduling fields of every task;
// it is a leaf, never held while a step runs.
type sched struct {
	limit int
	ctx   context.Context // ends at the Replicator's Close
	wg    sync.WaitGroup  // the workers

	mu      sync.Mutex
	due     taskHeap
	workers int
	timer   *time.Timer // fires at due[0].at; nil until first needed
	closed  bool
}

// task is one database's step in a sched.
type task struct {
	step func(ctx context.Context) time.Duration

	// Guarded by sched.mu.
	at      time.Time
	index   int  // in sched.due; -1 when not queued
	running bool // a worker runs step now
	woken   bool // woken while running: run again once it returns
	removed bool
}

// idle is what a step returns to wait for the next wake.
const idle time.Duration = -1

func newSched(ctx context.Context, limit int) *sched {
	return &sched{ctx: ctx, limit: limit}
}

// newTask returns a task for step; it runs once woken.
func (s *sched) newTask(step func(ctx context.Context) time.Duration) *task {
	return &task{step: step, index: -1}
}

// wake runs t's step as soon as a worker is free (again after it returns,
// if it runs now).
func (s *sched) wake(t *task) {
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.running {
		t.woken = true
		return
	}
	s.queue(t, time.Now())
	s.dispatch()
}

// remove forgets t: its step never runs again once a running one returns.
func (s *sched) remove(t *task) {
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.removed = true
	if t.index >= 0 {
		heap.Remove(&s.due, t.index)
	}
}

// close stops starting steps and waits for the running ones; the context
// has ended by then, so they return soon.
func (s *sched) close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// queued reports how many tasks wait in the heap (for tests).
func (s *sched) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.due)
}

// queue puts t in the heap at at, or earlier if it is queued for later.
// Caller holds s.mu.
func (s *sched) queue(t *task, at time.Time) {
	if t.removed || s.closed {
		return
	}
	if t.index >= 0 {
		if at.Before(t.at) {
			t.at = at
			heap.Fix(&s.due, t.index)
		}
		return
	}
	t.at = at
	heap.Push(&s.due, t)
}

// dispatch starts a worker if a task is due and the limit allows (each
// worker starts the next when it takes a task, so as many run as are due),
// and sets the timer for the first task that is not due yet. Caller holds
// s.mu.
func (s *sched) dispatch() {
	if s.closed || len(s.due) == 0 {
		return
	}
	wait := time.Until(s.due[0].at)
	if wait <= 0 {
		if s.workers < s.limit {
			s.workers++
			s.wg.Add(1)
			go func() {
				s.work()
				s.wg.Done() // after work returned: Close's callers see no worker left
			}()
		}
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(wait, s.fire)
	} else {
		s.timer.Reset(wait)
	}
}

func (s *sched) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dispatch()
}

// work runs due steps until none is due.
func (s *sched) work() {
	s.mu.Lock()
	for {
		if s.closed || s.ctx.Err() != nil || len(s.due) == 0 || s.due[0].at.After(time.Now()) {
			s.workers--
			s.dispatch() // the timer for what is left
			s.mu.Unlock()
			return
		}
		t := heap.Pop(&s.due).(*task)
		t.running = true
		s.dispatch() // another worker for the next due task
		s.mu.Unlock()
		next := t.step(s.ctx)
		s.mu.Lock()
		t.running = false
		switch {
		case t.woken:
			t.woken = false
			s.queue(t, time.Now())
		case next >= 0:
			s.queue(t, time.Now().Add(next))
		}
	}
}

// taskHeap orders tasks by when they are due.
type taskHeap []*task

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *taskHeap) Push(x any) {
	t := x.(*task)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
