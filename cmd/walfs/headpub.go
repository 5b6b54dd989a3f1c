package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
	"github.com/walfs/walfs/wal/head"
	"github.com/walfs/walfs/wal/replicate"
)

// startHeadPublisher starts publishing the head record that followers poll
// (package wal/head) when the store does conditional writes: it does where
// the lease was taken, and may where the lease is off (a store that turns
// out to refuse them stops the publisher, which says so once). Under a
// lease it publishes only while the lease holds. Nil: no publisher (lease
// auto found no conditional writes). At most one PUT starts per gap (the
// sync interval): one per upload round of a database, however many
// databases upload.
func startHeadPublisher(ctx context.Context, store s3backend.Store, held *lease.Lease, mode lease.Mode, gap time.Duration, log *slog.Logger) *head.Publisher {
	cw, ok := store.(s3backend.ConditionalWriter)
	if !ok {
		return nil
	}
	opts := head.Options{Store: cw, Logger: log, MinGap: gap}
	switch {
	case held != nil:
		h := held.Holder()
		opts.Writer, opts.Check = fmt.Sprintf("%s/%d lease %s", h.Host, h.PID, h.ID), held.Check
	case mode != lease.ModeOff:
		return nil
	}
	p := head.NewPublisher(opts)
	p.Start(ctx)
	log.Info("publishing the head record followers poll", "key", head.Key)
	return p
}

// headHooks connects the uploader to p (nil: no hooks).
func headHooks(p *head.Publisher, o *replicate.Options) {
	if p == nil {
		return
	}
	o.Uploaded = func(db string, info s3backend.FileInfo, pos replicate.Pos) {
		p.Uploaded(db, info, pos.TXID, pos.Checksum, info.CreatedAt)
	}
	o.Removed = p.Removed
}

// closeHeadPublisher publishes what the last uploads changed and stops p.
// A failure only delays followers (they see the changes once a primary
// publishes again, or by listing): it is logged, not returned.
func closeHeadPublisher(p *head.Publisher, timeout time.Duration, log *slog.Logger) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		log.Warn("the head record misses the last uploads; followers see them by listing or at the next publish", "err", err)
	}
}

// headStatusJSON is the publisher's part of `walfs status --json`.
type headStatusJSON struct {
	Seq          uint64     `json:"seq"`
	Publishes    uint64     `json:"publishes"`
	LastPublish  *time.Time `json:"last_publish,omitempty"`
	Pending      bool       `json:"pending"`
	Errors       uint64     `json:"errors"`
	LastError    string     `json:"last_error,omitempty"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Stopped      string     `json:"stopped,omitempty"`
	Overflow     bool       `json:"overflow,omitempty"` // too many databases for the record: followers list
}

func headStatusOf(p *head.Publisher) *headStatusJSON {
	if p == nil {
		return nil
	}
	st := p.Status()
	j := &headStatusJSON{
		Seq: st.Seq, Publishes: st.Publishes, LastPublish: timePtr(st.LastPublish), Pending: st.Pending,
		Errors: st.Errors, FailingSince: timePtr(st.FailingSince), Overflow: st.Overflow,
	}
	if st.LastErr != nil {
		j.LastError = st.LastErr.Error()
	}
	if st.Stopped != nil {
		j.Stopped = st.Stopped.Error()
	}
	return j
}

// printHeadStatus writes the publisher's line of `walfs status`.
func printHeadStatus(w io.Writer, h *headStatusJSON, now time.Time) {
	if h == nil {
		return
	}
	switch {
	case h.Stopped != "":
		fmt.Fprintf(w, "head record: not published (%s)\n", h.Stopped)
	case h.Overflow:
		fmt.Fprintf(w, "head record: more databases than one record names; followers list the replica (seq %d)\n", h.Seq)
	case h.FailingSince != nil:
		fmt.Fprintf(w, "head record: publishing failing since %s (%d errors): %s\n", ago(now, *h.FailingSince), h.Errors, h.LastError)
	default:
		last := "never"
		if h.LastPublish != nil {
			last = ago(now, *h.LastPublish)
		}
		fmt.Fprintf(w, "head record: seq %d, %d publishes, last %s, %d errors\n", h.Seq, h.Publishes, last, h.Errors)
	}
}

// writeHeadMetrics adds the publisher's metrics.
func writeHeadMetrics(w io.Writer, st head.Status) {
	p := &promWriter{w: w}
	p.family("walfs_head_publishes_total", "counter", "Head records written for followers since start.")
	p.sample("walfs_head_publishes_total", float64(st.Publishes))
	p.family("walfs_head_errors_total", "counter", "Failed publishes of the head record since start (each retried).")
	p.sample("walfs_head_errors_total", float64(st.Errors))
	p.family("walfs_head_pending", "gauge", "1 while uploads wait to be published in the head record.")
	pending := 0.0
	if st.Pending {
		pending = 1
	}
	p.sample("walfs_head_pending", pending)
}
