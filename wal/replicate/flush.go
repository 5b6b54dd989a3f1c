package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Pending describes a database with transactions not yet in the store.
type Pending struct {
	DB        string
	Spooled   uint64 // highest TXID captured
	Uploaded  uint64 // highest TXID in the store
	LastError error  // last upload error, if any
}

func (p Pending) String() string {
	s := fmt.Sprintf("%s: %d transaction(s) not uploaded (txid %d..%d)", p.DB, p.Spooled-p.Uploaded, p.Uploaded+1, p.Spooled)
	if p.LastError != nil {
		s += ": " + p.LastError.Error()
	}
	return s
}

// Pending lists databases whose spool is not empty.
func (r *Replicator) Pending() []Pending {
	var out []Pending
	for _, d := range r.all() {
		if st := d.up.Status(); st.Last > st.Uploaded.TXID {
			out = append(out, Pending{DB: d.rel, Spooled: st.Last, Uploaded: st.Uploaded.TXID, LastError: st.LastErr})
		}
	}
	return out
}

// PendingError reports what a flush could not upload.
type PendingError struct{ Pending []Pending }

func (e *PendingError) Error() string {
	parts := make([]string, len(e.Pending))
	for i, p := range e.Pending {
		parts[i] = p.String()
	}
	return "not everything reached the replica: " + strings.Join(parts, "; ")
}

// Flush uploads everything captured so far and waits until the store holds
// it, or ctx ends (then it returns a *PendingError naming what is left).
// It covers the databases Start found once they are resumed (WaitResumed).
func (r *Replicator) Flush(ctx context.Context) error {
	if err := r.WaitResumed(ctx); err != nil {
		return err
	}
	for _, d := range r.all() {
		if err := d.pollNow(); err != nil { // passthrough: what SQLite wrote may not have woken the watcher yet
			return err
		}
		if err := d.syncSpool(); err != nil {
			return err
		}
		if err := d.up.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return &PendingError{Pending: r.Pending()}
			}
			return err
		}
	}
	return nil
}

// Verify proves that the store holds, for every database, the newest
// position walfs uploaded: it lists the store rather than trusting memory.
// A replica that lost objects is repaired with a new snapshot (repair.go).
func (r *Replicator) Verify(ctx context.Context) error {
	if err := r.WaitResumed(ctx); err != nil {
		return err
	}
	var errs []error
	for _, d := range r.all() {
		want := d.up.Status().Uploaded
		if want.TXID == 0 {
			continue
		}
		dm := r.maint.lookup(d.rel)
		seen := dm.floorNow()
		got, err := replicaPos(ctx, r.opts.Store, d.rel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got.TXID < want.TXID {
			found := inconsistent(fmt.Errorf("the store holds TXID %d, walfs uploaded TXID %d: objects are missing", got.TXID, want.TXID))
			if _, err := dm.repair(ctx, seen, found); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d.rel, err))
			}
			continue
		}
		repaired, err := r.checkLineage(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if repaired {
			if err := d.up.Flush(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: upload repairing snapshot: %w", d.rel, err))
			}
		}
	}
	return errors.Join(errs...)
}
