package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// uploader ships one database's spool to the store and knows how far the
// store has it: it owns the upload state below.
//
// step, run by the Replicator's upload scheduler (sched.go) when woken,
// uploads a batch at most once per interval; a sync commit, Compare and a
// repair upload from their own goroutines through uploadThrough, and upMu
// makes every upload one at a time. mu guards the fields after it, which
// Status, WaitFor and the capture side's notices (spooled, burn, drop) read
// and change; it is held only to copy or set them, never across I/O or
// while taking another lock. backoff and retryAt belong to step, which the
// scheduler runs on one goroutine at a time.
type uploader struct {
	rel      string
	log      *slog.Logger
	store    s3backend.Store
	stateDir string                        // positions (pos/) and merge files (tmp/)
	interval time.Duration                 // at most one level-0 upload per interval
	onUpload func(s3backend.FileInfo, Pos) // Options.Uploaded for this database; nil when unset
	spool    *spoolWriter                  // its open segment is closed before each batch
	sched    *sched                        // runs step; nil in tests that upload by hand
	task     *task                         // step's place in sched; set before the uploader is shared
	backoff  time.Duration                 // step's wait after a failed batch
	retryAt  time.Time                     // step uploads nothing before this (backoff)

	upMu sync.Mutex // one upload at a time

	mu           sync.Mutex
	last         uint64        // highest TXID spooled
	uploaded     Pos           // highest position known to be in the store
	lastPut      time.Time     // when the last level-0 upload finished
	firstAt      time.Time     // a new database's first upload waits until then (resumeAt)
	flushing     int           // >0 while someone waits in WaitFor: skip the interval
	progress     chan struct{} // closed and replaced on every change
	lastErr      error
	dropTo       uint64    // TXIDs up to this one are never uploaded: their database was deleted (queue.go)
	failingSince time.Time // when the current run of failed uploads began; zero while they succeed
	failures     int       // failed attempts in that run
}

// uploaderConfig is what an uploader is given at construction.
type uploaderConfig struct {
	rel      string
	log      *slog.Logger
	store    s3backend.Store
	stateDir string
	interval time.Duration
	onUpload func(s3backend.FileInfo, Pos) // told of every upload put made; nil: nobody
}

func newUploader(c uploaderConfig, spool *spoolWriter) *uploader {
	return &uploader{
		rel: c.rel, log: c.log, store: c.store, stateDir: c.stateDir, interval: c.interval,
		onUpload: c.onUpload, spool: spool, backoff: time.Second,
		progress: make(chan struct{}),
	}
}

// uploadStatus is a copy of an uploader's state.
type uploadStatus struct {
	Last         uint64    // highest TXID spooled
	Uploaded     Pos       // highest position the store holds
	LastPut      time.Time // when the last level-0 upload finished; zero if none since start
	LastErr      error     // of the last attempt
	FailingSince time.Time // when the current run of failed attempts began; zero while they succeed
	Failures     int       // failed attempts in that run
}

// Status returns the uploader's state. It never waits for an upload.
func (u *uploader) Status() uploadStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return uploadStatus{
		Last: u.last, Uploaded: u.uploaded, LastPut: u.lastPut, LastErr: u.lastErr,
		FailingSince: u.failingSince, Failures: u.failures,
	}
}

// changed returns a channel closed at the next change of Status.
func (u *uploader) changed() <-chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.progress
}

// positions reads where the replica stood when walfs last ran: the position
// saved after the last upload, and the newest in the store (a listing of
// every level and a trailer read).
func (u *uploader) positions(ctx context.Context) (saved, remote Pos, err error) {
	if saved, err = loadPos(u.stateDir, u.rel); err != nil {
		return Pos{}, Pos{}, err
	}
	if remote, err = replicaPos(ctx, u.store, u.rel); err != nil {
		return Pos{}, Pos{}, err
	}
	return saved, remote, nil
}

// resumeAt sets the position the store holds, found at open.
//
// A database the store holds nothing of waits one interval for its first
// upload, like any upload after another: its first snapshot and the commits
// that follow it within the interval then go up as one snapshot
// (foldSnapshot), not two objects. A database created, written and closed
// in one go, one per tenant, costs one PUT instead of two, and a sync commit
// or a flush still uploads at once.
func (u *uploader) resumeAt(uploaded Pos) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.uploaded = uploaded
	u.last = max(u.last, uploaded.TXID)
	if uploaded.TXID == 0 {
		u.firstAt = time.Now().Add(u.interval)
	}
}

// spooled records that txid is in the spool and wakes the uploader.
func (u *uploader) spooled(txid uint64) {
	u.mu.Lock()
	u.last = max(u.last, txid)
	u.mu.Unlock()
	u.kick()
}

// kick has step run soon (again, if it runs now).
func (u *uploader) kick() {
	if u.sched != nil {
		u.sched.wake(u.task)
	}
}

func (u *uploader) uploadedTXID() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.uploaded.TXID
}

// burn forgets txid, the newest spooled TXID, after its commit failed: there
// is nothing to upload for it. The TXID itself is never reused.
func (u *uploader) burn(txid uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == txid {
		u.last = txid - 1
	}
	u.notify()
}

// notify wakes whoever waits on progress. Caller holds u.mu.
func (u *uploader) notify() {
	close(u.progress)
	u.progress = make(chan struct{})
}

// WaitFor waits until the store holds txid (or, when a delete dropped
// TXIDs, everything up to it that is left to upload), or ctx ends.
// Meanwhile run skips its interval.
func (u *uploader) WaitFor(ctx context.Context, txid uint64) error {
	u.mu.Lock()
	u.flushing++
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.flushing--
		u.mu.Unlock()
	}()
	for {
		ch := u.changed() // before reading: a change after this closes it
		st := u.Status()
		if st.Uploaded.TXID >= min(txid, st.Last) { // Last drops back when a deleted database's uploads are dropped
			return nil
		}
		u.kick()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Flush waits until the store holds everything spooled so far (WaitFor).
func (u *uploader) Flush(ctx context.Context) error {
	return u.WaitFor(ctx, u.Status().Last)
}

// step is the uploader's work whenever the scheduler runs it: woken by
// spooled or WaitFor, it uploads what pass takes and says when to look
// again (sched.go: idle, at once, or after a wait). A wake cuts the rest of
// the interval short (WaitFor skips it), never a backoff after a failure.
func (u *uploader) step(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return idle
	}
	if wait := time.Until(u.retryAt); wait > 0 {
		return wait
	}
	next := u.pass(ctx)
	switch {
	case next.idle || ctx.Err() != nil:
		return idle
	case next.backoff > 0:
		u.retryAt = time.Now().Add(next.backoff)
		return next.backoff
	}
	return next.wait
}

// nextPass says when pass wants to run again.
type nextPass struct {
	idle    bool          // not before the next wake-up: nothing pending, or nothing could be taken yet
	wait    time.Duration // the rest of the interval; a wake-up cuts it short
	backoff time.Duration // after a failed batch; a wake-up does not cut it short
}

// pass does what is due now: one batch (uploadOnce) if something is pending
// and the interval since the last upload has passed (or someone waits).
// Zero nextPass: again at once.
func (u *uploader) pass(ctx context.Context) nextPass {
	u.mu.Lock()
	pending := u.last > u.uploaded.TXID
	wait := max(u.interval-time.Since(u.lastPut), time.Until(u.firstAt))
	if u.flushing > 0 {
		wait = 0
	}
	u.mu.Unlock()
	if !pending {
		return nextPass{idle: true}
	}
	if wait > 0 {
		return nextPass{wait: wait}
	}
	before := u.uploadedTXID()
	err := u.uploadOnce(ctx)
	since, failures := u.result(err, time.Now())
	if err == nil {
		if failures > 0 {
			u.log.Info("uploads succeed again", "failed_for", time.Since(since).Round(time.Second), "failed_attempts", failures)
		}
		u.backoff = time.Second
		if u.uploadedTXID() == before {
			return nextPass{idle: true} // nothing could be taken yet; wait for the next wake-up
		}
		return nextPass{}
	}
	if ctx.Err() != nil {
		return nextPass{idle: true}
	}
	u.log.Error("upload failed; will retry (commits keep going to the local spool)",
		"failing_since", since.Format(time.RFC3339), "attempts", failures, "retry_in", u.backoff, "err", err)
	next := nextPass{backoff: u.backoff}
	u.backoff = min(2*u.backoff, 30*time.Second)
	return next
}

// maxBatchBytes bounds the spooled bytes merged into one level-0 upload.
const maxBatchBytes = 256 << 20

// uploadOnce uploads everything pending in the spool, whatever its shape:
// the newest spooled snapshot, which makes what was spooled before it
// unnecessary (queue.go), then every closed segment after it merged into
// one level-0 file (up to maxBatchBytes). One batch per sync interval must
// keep up with any number of commits and snapshots.
func (u *uploader) uploadOnce(ctx context.Context) error {
	u.upMu.Lock()
	defer u.upMu.Unlock()
	limit, err := u.spool.closeSegment() // segments starting after limit were opened after it
	if err != nil {
		return err
	}
	entries, err := u.spool.list()
	if err != nil {
		return err
	}
	if entries, err = u.supersede(entries); err != nil {
		return err
	}
	if len(entries) > 0 && entries[0].Snapshot {
		n, err := u.foldSnapshot(ctx, entries[0], entries[1:], limit)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := u.uploadSnapshot(ctx, entries[0]); err != nil {
				return err
			}
		}
		entries = entries[1+n:]
	}
	if len(entries) == 0 {
		return nil
	}
	var segs []spoolEntry
	var recs [][]record
	var total int64
	next := u.uploadedTXID() + 1
	for _, e := range entries {
		if e.Snapshot || e.TXID > next || e.TXID > limit || total > maxBatchBytes {
			break
		}
		rs, _, err := readRecords(e.Path)
		if err != nil {
			return fmt.Errorf("read spool segment: %w", err)
		}
		for len(rs) > 0 && rs[0].TXID < next {
			rs = rs[1:] // uploaded by an earlier, partial batch
		}
		if len(rs) == 0 { // empty, or all of it is in the store already
			if err := u.spool.remove(e.Path); err != nil {
				return err
			}
			continue
		}
		if rs[0].TXID != next {
			break
		}
		segs, recs = append(segs, e), append(recs, rs)
		for _, r := range rs {
			total += r.Len
		}
		next = rs[len(rs)-1].TXID + 1
	}
	if len(segs) == 0 {
		return nil
	}
	return u.uploadSegments(ctx, segs, recs)
}

func (u *uploader) uploadSnapshot(ctx context.Context, e spoolEntry) error {
	f, err := os.Open(e.Path)
	if err != nil {
		return fmt.Errorf("open spooled snapshot: %w", err)
	}
	defer f.Close() // read only
	hdr, trailer, err := readLTXTrailer(f)
	if err != nil {
		return fmt.Errorf("verify spooled snapshot %s: %w", e.Path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	info := s3backend.FileInfo{DB: u.rel, Level: s3backend.LevelSnapshot, MinTXID: 1, MaxTXID: e.TXID, CreatedAt: time.UnixMilli(hdr.Timestamp)}
	return u.put(ctx, info, f, fi.Size(), Pos{TXID: e.TXID, Checksum: trailer.PostApplyChecksum}, []string{e.Path}, 1)
}

func (u *uploader) uploadSegments(ctx context.Context, segs []spoolEntry, recs [][]record) (err error) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close() //walfs:ignore-error read only: the segments were written and synced by the spool writer
		}
	}()
	var inputs []spoolRecord
	for i, e := range segs {
		f, err := os.Open(e.Path)
		if err != nil {
			return fmt.Errorf("open spool segment: %w", err)
		}
		files = append(files, f)
		for _, rec := range recs[i] {
			inputs = append(inputs, spoolRecord{f: f, record: rec})
		}
	}
	body, size, hdr, trailer, cleanup, err := u.mergeBatch(inputs)
	if err != nil {
		return fmt.Errorf("merge spooled transactions of %s: %w", u.rel, err)
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	last := uint64(hdr.MaxTXID)
	var paths []string // segments wholly in this batch; a partial one stays
	for i, e := range segs {
		if rs := recs[i]; rs[len(rs)-1].TXID <= last {
			paths = append(paths, e.Path)
		}
	}
	info := s3backend.FileInfo{
		DB: u.rel, Level: s3backend.LevelL0, MinTXID: uint64(hdr.MinTXID), MaxTXID: uint64(hdr.MaxTXID),
		CreatedAt: time.UnixMilli(hdr.Timestamp),
	}
	return u.put(ctx, info, body, size, Pos{TXID: last, Checksum: trailer.PostApplyChecksum}, paths, int(last-uint64(hdr.MinTXID)+1))
}

// put uploads one object, records the new position and drops the spool
// files it came from.
func (u *uploader) put(ctx context.Context, info s3backend.FileInfo, body io.Reader, size int64, pos Pos, spoolFiles []string, txns int) error {
	start := time.Now()
	stored, err := u.store.Write(ctx, info, body, size)
	if err != nil {
		return fmt.Errorf("upload %s: %w", s3backend.Key(info), err)
	}
	if err := savePos(u.stateDir, u.rel, pos); err != nil {
		return err
	}
	if err := u.spool.remove(spoolFiles...); err != nil {
		return err
	}
	u.mu.Lock()
	u.uploaded = pos
	u.lastPut = time.Now()
	deleted := pos.TXID <= u.dropTo // its database was deleted while it uploaded
	u.mu.Unlock()
	u.log.Debug("uploaded", "key", s3backend.Key(info), "bytes", size, "txns", txns, "took", time.Since(start))
	if u.onUpload != nil && !deleted {
		if stored.Size == 0 {
			stored.Size = size
		}
		u.onUpload(stored, pos)
	}
	return nil
}

// uploadThrough uploads the spool in the calling goroutine, without waiting
// for the sync interval, until the store holds txid or ctx ends. Callers
// holding DB.mu (a sync commit, verify) know that nothing is spooled after
// txid meanwhile, so the last upload ends exactly there.
func (u *uploader) uploadThrough(ctx context.Context, txid uint64) error {
	var lastErr error
	for {
		before := u.uploadedTXID()
		if before >= txid {
			return nil
		}
		if ctx.Err() != nil {
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return lastErr
		}
		err := u.uploadOnce(ctx)
		u.result(err, time.Now())
		switch {
		case err != nil:
			lastErr = err
			waitCtx(ctx, 100*time.Millisecond)
		case u.uploadedTXID() == before:
			waitCtx(ctx, 10*time.Millisecond) // nothing could be taken yet (the uploader has it): look again
		}
	}
}
