package lease

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrHeld means another writer holds the lease; see HeldError.
	ErrHeld = errors.New("replica path is in use by another walfs")

	// ErrFenced means this writer may not write to the replica now: its
	// lease expired before it could renew it, was lost to another holder,
	// or was released. Every fenced error from Check matches it.
	ErrFenced = errors.New("lease fenced")

	// ErrLost means the lease is gone for good (another holder took it, or
	// the lease object was deleted or released by someone else). Errors
	// matching ErrLost also match ErrFenced.
	ErrLost = errors.New("lease lost")

	// ErrUnreadable means the lease object exists but is not a lease record
	// this walfs understands; nothing takes over such an object.
	ErrUnreadable = errors.New("lease object unreadable")
)

// HeldError is the refusal to start while another writer holds the lease.
// Its message is one line that names the holder and when the lease expires.
type HeldError struct {
	Where   string // the replica, for the message
	Key     string
	Holder  Holder
	Expires time.Time
	Now     time.Time // when it was read, for "in 27s"
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is in use by %s: its lease (%s) expires at %s (in %s) unless renewed; stop that walfs first (walfs unmount), wait for the lease to expire, or use another replica path",
		e.Where, e.Holder, e.Key, e.Expires.UTC().Format(time.RFC3339), e.Expires.Sub(e.Now).Round(time.Second))
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// FenceError says why this writer may not write now.
type FenceError struct {
	// Reason is one line for people: "lease expired at … after 3 failed
	// renewals", "lease taken over by …".
	Reason string
	// By is the new holder when another writer took the lease over.
	By *Holder
	// Permanent is true for a lost lease; false for one that expired and
	// may still be renewed.
	Permanent bool
	// Err is the last renewal error, if any.
	Err error
}

func (e *FenceError) Error() string {
	s := "fenced: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FenceError) Unwrap() []error {
	errs := []error{ErrFenced}
	if e.Permanent {
		errs = append(errs, ErrLost)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
