package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/lease"
	"github.com/walfs/walfs/wal/follow"
	"github.com/walfs/walfs/wal/replicate"
)

// runFollower serves the replica read-only at the mount point and keeps it
// current until unmounted (it returns nil, nil) or promoted (it returns
// the lease it took; the caller goes on as the primary).
func runFollower(c *cli.Context, cfg *settings, store s3backend.Store, requests *instrument.Counter, log *slog.Logger, sigs chan os.Signal) (*lease.Lease, error) {
	ctx := c.Context
	src := followSource(store)
	fl, err := follow.New(follow.Options{Store: store, DataDir: cfg.DataDir, Source: src, Interval: cfg.PollInterval, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("following", "data_dir", cfg.DataDir, "mount_point", cfg.MountPoint, "replica", store.String(), "poll_interval", cfg.PollInterval, "news", src.String())
	if err := fl.Start(ctx); err != nil {
		return nil, err // before the mount appears: nothing half made
	}
	m, err := fusefs.NewFollower(fusefs.FollowOptions{
		DataDir: cfg.DataDir, MountPoint: cfg.MountPoint, Header: fl, Logger: log,
		Debug: c.Bool("debug-fuse"), AllowOther: cfg.Access.AllowOther,
	})
	if err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		// Until promoted: each database's TXIDs and lag, and the store
		// requests (the primary serves its own once promoted).
		stopMetrics, err := startMetrics(cfg.MetricsAddr, metricsSource{dbs: func() []replicate.DBStatus { return followMetrics(fl.Status()) }, requests: requests.Ops}, log)
		if err != nil {
			return nil, errors.Join(err, m.Unmount(true))
		}
		defer stopMetrics()
	}
	fl.SetLock(follow.MountLock(cfg.MountPoint))
	fl.Go(ctx)
	defer fl.Close()
	// stopAndUnmount stops updates first: an update holds a file of the
	// mount open (its lock), which would keep the mount busy.
	stopAndUnmount := func(lazy bool) error {
		if err := fl.Close(); err != nil {
			return err
		}
		if err := m.Unmount(lazy); err != nil {
			fl.Go(ctx)
			return err
		}
		return nil
	}
	log.Info("mounted read-only; databases follow the replica", "mount_point", cfg.MountPoint)

	p := &promoter{cfg: cfg, store: store, fl: fl, log: log, done: make(chan *lease.Lease, 1), busy: make(chanMutex, 1)}
	ctl, err := startControl(filepath.Join(cfg.DataDir, fusefs.StateDirName), log,
		func(ctx context.Context, req unmountRequest) error { return stopAndUnmount(req.Lazy) },
		func(ctx context.Context, timeout time.Duration) error {
			fl.Step(ctx) // `walfs sync` on a follower: poll now
			return nil
		},
		statusRoute(func() statusReport { return followStatus(fl.Status(), requests, cfg.DataDir, store.String()) }),
		verifyRoute(func(ctx context.Context, req verifyRequest) verifyReport {
			return followVerify(fl.Verify(ctx), cfg.DataDir, store.String())
		}),
		jsonRoute("POST /promote", func(ctx context.Context, req promoteRequest) unmountResponse {
			if err := p.promote(ctx, req.Wait); err != nil {
				return unmountResponse{Error: oneLine(err)}
			}
			return unmountResponse{OK: true}
		}))
	if err != nil {
		return nil, errors.Join(err, m.Unmount(true))
	}
	if cfg.TakeoverAfter > 0 {
		go p.watchLease(ctx, cfg.TakeoverAfter)
	}
	unmounted := make(chan struct{})
	go func() {
		m.Wait()
		close(unmounted)
	}()
	for {
		select {
		case sig := <-sigs:
			log.Info("signal received: unmounting", "signal", sig.String())
			if err := stopAndUnmount(false); err != nil {
				log.Warn("files still open; detaching the mount lazily", "err", err)
				if err := stopAndUnmount(true); err != nil {
					log.Error("lazy unmount failed", "err", err)
				}
			}
		case held := <-p.done:
			// Detach the read-only view lazily: readers keep their open
			// files until they close them; new opens reach the primary
			// mounted next.
			ctl.Close()
			if err := m.Unmount(true); err != nil {
				return nil, errors.Join(fmt.Errorf("promote: detach the read-only mount: %w", err), held.Release(context.Background()))
			}
			log.Info("promoted: this mount is now the writer", "mount_point", cfg.MountPoint)
			return held, nil
		case <-unmounted:
			ctl.Close()
			log.Info("unmounted")
			return nil, nil
		}
	}
}

// followSource picks how a follower learns what is new: the primary's head
// object when the store can read it conditionally, else listings.
func followSource(store s3backend.Store) follow.Source {
	return follow.NewSource(store)
}

type promoteRequest struct {
	Wait time.Duration `json:"wait"`
}

// promoter turns the follower into the primary, once.
type promoter struct {
	cfg   *settings
	store s3backend.Store
	fl    *follow.Follower
	log   *slog.Logger
	done  chan *lease.Lease // receives the lease once promoted
	busy  chanMutex
}

// chanMutex is a mutex a caller can give up waiting for.
type chanMutex chan struct{}

// promote takes the lease (waiting up to wait for the primary's to
// expire), applies everything the replica holds (listing it: a primary
// that died may not have published its head) and hands the lease to
// runFollower, which detaches the read-only view and mounts the primary.
func (p *promoter) promote(ctx context.Context, wait time.Duration) error {
	select {
	case p.busy <- struct{}{}:
		defer func() { <-p.busy }()
	default:
		return errors.New("promote: already in progress")
	}
	if len(p.done) > 0 {
		return errors.New("promote: already promoted")
	}
	held, err := p.takeLease(ctx, wait)
	if err != nil {
		return err
	}
	if err := p.fl.Close(); err != nil {
		return errors.Join(err, held.Release(context.Background()))
	}
	if err := p.fl.CatchUp(ctx); err != nil {
		rerr := held.Release(context.Background())
		p.fl.Go(context.Background())
		return errors.Join(fmt.Errorf("promote: bring the databases up to the replica's latest point: %w", err), rerr)
	}
	p.done <- held // runFollower detaches the view and mounts the primary
	return nil
}

// takeLease takes the replica's lease, retrying while another holder's
// lease is still valid, for up to wait.
func (p *promoter) takeLease(ctx context.Context, wait time.Duration) (*lease.Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		held, err := openLease(ctx, p.cfg, p.store, p.log)
		var he *lease.HeldError
		if !errors.As(err, &he) {
			return held, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("promote: %w (waited %s; retry with a longer --wait, or once the primary is gone)", err, wait)
		case <-time.After(min(time.Second, p.cfg.LeaseTTL/6)):
		}
	}
}

// watchLease promotes the follower once the primary's lease has been gone
// (expired, released, or its holder dead on this host) for after. It reads
// the lease record every poll interval (or a quarter of after, if longer;
// at most every third of the TTL).
func (p *promoter) watchLease(ctx context.Context, after time.Duration) {
	cw, ok := p.store.(s3backend.ConditionalWriter)
	if !ok {
		p.log.Error("--takeover-after needs a store with conditional writes (the lease); automatic takeover is off")
		return
	}
	var goneSince time.Time
	t := time.NewTicker(min(p.cfg.LeaseTTL/3, max(p.cfg.PollInterval, after/4)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rec, err := lease.Peek(ctx, cw, "")
		now := time.Now()
		switch {
		case errors.Is(err, s3backend.ErrNotFound):
			// Nobody ever held it: gone.
		case err != nil:
			p.log.Warn("read the primary's lease", "err", err)
			continue
		case !rec.Gone(now):
			goneSince = time.Time{}
			continue
		}
		if goneSince.IsZero() {
			goneSince = now
			p.log.Warn("the primary's lease is gone; taking over if it stays so", "after", after)
		}
		if now.Sub(goneSince) < after {
			continue
		}
		p.log.Warn("taking over: the primary's lease has been gone", "for", now.Sub(goneSince).Round(time.Second))
		if err := p.promote(ctx, p.cfg.LeaseTTL); err != nil {
			p.log.Error("automatic takeover failed; retrying", "err", err)
			goneSince = time.Time{}
			continue
		}
		return
	}
}

// openLease takes the replica's lease in the mount's lease mode.
func openLease(ctx context.Context, cfg *settings, store s3backend.Store, log *slog.Logger) (*lease.Lease, error) {
	mode, _ := lease.ParseMode(cfg.Lease)
	return lease.Open(ctx, store, mode, lease.Options{Logger: log, TTL: cfg.LeaseTTL})
}

// followStatus is a follower's status report.
func followStatus(s follow.Status, count *instrument.Counter, dataDir, replica string) statusReport {
	rep := statusReport{Role: "follower", DataDir: dataDir, Replica: replica, StoreRequests: map[string]uint64{}, Databases: []dbStatusJSON{}}
	for op, oc := range count.Ops() {
		rep.StoreRequests[op] = oc.Calls
	}
	rep.Follow = &followJSON{News: s.Source, PollInterval: s.Interval.String(), LastPoll: timePtr(s.LastPoll), PollError: s.PollErr, Polls: s.Polls, Changes: s.Changes}
	for _, d := range s.DBs {
		j := dbStatusJSON{DB: d.DB, LocalTXID: d.TXID, ReplicatedTXID: d.ReplicaTXID, LagSeconds: d.Lag.Seconds(),
			LastError: d.Error, Waiting: d.Waiting, Applied: d.Applied, Reloads: d.Reloads, Commit: timePtr(d.Commit), Levels: []replicaLevelJSON{}}
		rep.Databases = append(rep.Databases, j)
	}
	return rep
}

// followJSON is the follower part of a status report.
type followJSON struct {
	News         string     `json:"news"` // how the follower learns what is new
	PollInterval string     `json:"poll_interval"`
	LastPoll     *time.Time `json:"last_poll,omitempty"`
	PollError    string     `json:"poll_error,omitempty"`
	Polls        uint64     `json:"polls"`
	Changes      uint64     `json:"changes"` // polls that found news
}

// printFollowStatus writes a follower's report as a table.
func printFollowStatus(w io.Writer, rep statusReport, now time.Time) {
	if f := rep.Follow; f != nil {
		last := "never"
		if f.LastPoll != nil {
			last = ago(now, *f.LastPoll)
		}
		fmt.Fprintf(w, "read-only follower: polls every %s (%s); last poll %s; %d polls, %d with news\n", f.PollInterval, f.News, last, f.Polls, f.Changes)
		if f.PollError != "" {
			fmt.Fprintf(w, "last poll failed: %s\n", f.PollError)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tTXID\tREPLICA TXID\tBEHIND FOR\tCOMMITTED\tUPDATES\tRESTORES\tWAITING FOR / LAST ERROR")
	for _, d := range rep.Databases {
		why := "-"
		switch {
		case d.Waiting != "":
			why = d.Waiting
		case d.LastError != "":
			why = d.LastError
		}
		committed := "-"
		if d.Commit != nil {
			committed = ago(now, *d.Commit)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", d.DB, d.LocalTXID, d.ReplicatedTXID,
			time.Duration(d.LagSeconds*float64(time.Second)).Round(time.Millisecond), committed, d.Applied, d.Reloads, why)
	}
	tw.Flush()
}

// followVerify is a follower's answer to `walfs verify`: each database's
// file against the replica's checksum at the TXID it serves.
func followVerify(vs []follow.Verification, dataDir, replica string) verifyReport {
	out := verifyReport{DataDir: dataDir, Replica: replica, Databases: []comparisonJSON{}}
	for _, v := range vs {
		j := comparisonJSON{DB: v.DB, TXID: v.TXID, Live: v.Live.String()}
		if v.Replica != 0 {
			j.Replica, j.Files = v.Replica.String(), 1 // the file ending at TXID
		}
		switch {
		case v.Equal():
			j.Status = verifyEqual
		case v.Difference != "":
			j.Status, j.Problem = verifyDifferent, v.Difference
		default:
			j.Status, j.Problem = verifyError, v.Err
		}
		out.Databases = append(out.Databases, j)
	}
	return out
}

// followMetrics presents a follower's databases as the metrics show a
// primary's: the TXID readers see as the local one, the newest known as
// the replicated one, and how long it has been behind as the lag.
func followMetrics(s follow.Status) []replicate.DBStatus {
	out := make([]replicate.DBStatus, 0, len(s.DBs))
	for _, d := range s.DBs {
		out = append(out, replicate.DBStatus{DB: d.DB, LocalTXID: d.TXID, ReplicatedTXID: d.ReplicaTXID, Lag: d.Lag, LastError: d.Error})
	}
	return out
}

// keepGapFiles moves whatever is in the bare mount point (written by an app
// in the moment between detaching the read-only view and mounting the
// primary) to <state dir>/fenced/promotion-<time>/, and names it in the log.
func keepGapFiles(mountPoint, dataDir string, log *slog.Logger) error {
	entries, err := os.ReadDir(mountPoint)
	if err != nil || len(entries) == 0 {
		return err
	}
	dest := filepath.Join(dataDir, fusefs.StateDirName, "fenced", "promotion-"+time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if err := os.Rename(filepath.Join(mountPoint, e.Name()), filepath.Join(dest, e.Name())); err != nil {
			return fmt.Errorf("keep aside %s, written into the bare mount point during the promotion: %w", e.Name(), err)
		}
		names = append(names, e.Name())
	}
	log.Warn("files written into the mount point while the promotion switched mounts were kept aside", "files", names, "kept_in", dest)
	return nil
}
