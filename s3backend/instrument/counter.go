package instrument

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// Store operations, one per method of Store and of the optional interfaces
// the wrapper forwards.
const (
	OpInit              = "init"
	OpListDatabases     = "list_databases"
	OpList              = "list"
	OpGet               = "get"
	OpPut               = "put"
	OpDelete            = "delete"
	OpStat              = "stat"
	OpConditionalGet    = "conditional_get"
	OpConditionalPut    = "conditional_put"
	OpConditionalDelete = "conditional_delete"
	OpConditionalPoll   = "conditional_poll" // GetIfNoneMatch
	OpProbe             = "probe"
)

// Error kinds a failed call is counted under.
const (
	KindNotFound       = "not_found"
	KindNotModified    = "not_modified" // a poll that found no change: the expected answer
	KindPrecondition   = "precondition_failed"
	KindUnsupported    = "unsupported"
	KindAccessDenied   = "access_denied"
	KindBucketNotFound = "bucket_not_found"
	KindUnreachable    = "unreachable"
	KindInvalid        = "invalid"
	KindCanceled       = "canceled"
	KindOther          = "other"
)

// ErrorKind classifies a store error for counting.
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindCanceled
	case errors.Is(err, s3backend.ErrNotFound):
		return KindNotFound
	case errors.Is(err, s3backend.ErrNotModified):
		return KindNotModified
	case errors.Is(err, s3backend.ErrPreconditionFailed):
		return KindPrecondition
	case errors.Is(err, s3backend.ErrConditionalUnsupported):
		return KindUnsupported
	case errors.Is(err, s3backend.ErrAccessDenied):
		return KindAccessDenied
	case errors.Is(err, s3backend.ErrBucketNotFound):
		return KindBucketNotFound
	case errors.Is(err, s3backend.ErrUnreachable):
		return KindUnreachable
	case errors.Is(err, s3backend.ErrInvalidFileInfo), errors.Is(err, s3backend.ErrSizeMismatch),
		errors.Is(err, s3backend.ErrInvalidRange), errors.Is(err, s3backend.ErrInvalidConfig),
		errors.Is(err, s3backend.ErrInvalidKey):
		return KindInvalid
	}
	return KindOther
}

// OpCount is what a Counter knows about one operation.
type OpCount struct {
	Calls  uint64            // every call, failed or not
	Errors map[string]uint64 // failed calls by kind
}

// Counter holds the counts of one or more wrapped stores. The zero value is
// not usable; call NewCounter. Safe for concurrent use.
type Counter struct {
	mu  sync.Mutex
	ops map[string]*OpCount
	dbs map[string]*hourWindow
}

// NewCounter returns an empty Counter on the system clock.
func NewCounter() *Counter {
	return &Counter{ops: map[string]*OpCount{}, dbs: map[string]*hourWindow{}}
}

// record counts one call of op that touched dbs and ended with err.
func (c *Counter) record(op string, err error, dbs ...string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	oc := c.ops[op]
	if oc == nil {
		oc = &OpCount{Errors: map[string]uint64{}}
		c.ops[op] = oc
	}
	oc.Calls++
	if err != nil {
		oc.Errors[ErrorKind(err)]++
	}
	for i, db := range dbs {
		if slices.Contains(dbs[:i], db) {
			continue // one Delete of many objects of a db is one call for it
		}
		w := c.dbs[db]
		if w == nil {
			w = &hourWindow{}
			c.dbs[db] = w
		}
		w.add(now)
	}
}

// Ops returns a copy of the counts by operation.
func (c *Counter) Ops() map[string]OpCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]OpCount, len(c.ops))
	for op, oc := range c.ops {
		out[op] = OpCount{Calls: oc.Calls, Errors: maps.Clone(oc.Errors)}
	}
	return out
}

// Total returns the number of calls of every operation.
func (c *Counter) Total() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, oc := range c.ops {
		n += oc.Calls
	}
	return n
}

// LastHour returns the calls that named db (List, Open, Write, Delete,
// Stat) during the last hour. Init and ListDatabases name no database.
func (c *Counter) LastHour(db string) uint64 {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.dbs[db]; w != nil {
		return w.sum(now)
	}
	return 0
}

// hourWindow counts events per minute over the last 60 minutes: slot m%60
// counts minute m for the minutes in (last-60, last]. 248 bytes a database
// (a mount may hold ten thousand).
type hourWindow struct {
	last  int64 // the Unix minute of the newest event
	count [60]uint32
}

func (w *hourWindow) add(now time.Time) {
	m := now.Unix() / 60
	switch {
	case m > w.last:
		// Minutes since the newest event start from zero.
		for k := max(w.last+1, m-59, 0); k <= m; k++ {
			w.count[k%60] = 0
		}
		w.last = m
	case m <= w.last-60:
		return // older than the window (the clock went back an hour)
	}
	w.count[m%60]++
}

func (w *hourWindow) sum(now time.Time) uint64 {
	m := now.Unix() / 60
	var n uint64
	for k := max(m-59, w.last-59, 0); k <= min(m, w.last); k++ {
		n += uint64(w.count[k%60])
	}
	return n
}
