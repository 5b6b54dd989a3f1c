package replicate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/superfly/ltx"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// uploadState is the upload side of a DB. Its own mutex, so uploads never
// block commits.
type uploadState struct {
	mu       sync.Mutex
	last     uint64        // highest TXID spooled
	uploaded Pos           // highest position known to be in the store
	lastPut  time.Time     // when the last level-0 upload finished
	flushing int           // >0 while someone waits in Flush: skip the interval
	progress chan struct{} // closed and replaced on every change
	lastErr  error
	wake     chan struct{}

	dropTo       uint64    // TXIDs up to this one are never uploaded: their database was deleted (queue.go)
	failingSince time.Time // when the current run of failed uploads began; zero while they succeed
	failures     int       // failed attempts in that run
}

func (u *uploadState) init(uploaded Pos) {
	u.uploaded = uploaded
	u.last = max(u.last, uploaded.TXID)
	u.progress = make(chan struct{})
	u.wake = make(chan struct{}, 1)
}

// spooled records that txid is in the spool and wakes the uploader.
func (u *uploadState) spooled(txid uint64) {
	u.mu.Lock()
	u.last = max(u.last, txid)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (d *DB) uploadedTXID() uint64 {
	d.up.mu.Lock()
	defer d.up.mu.Unlock()
	return d.up.uploaded.TXID
}

// burn forgets txid, the newest spooled TXID, after its commit failed: there
// is nothing to upload for it. The TXID itself is never reused.
func (u *uploadState) burn(txid uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == txid {
		u.last = txid - 1
	}
	u.notify()
}

func (u *uploadState) notify() {
	close(u.progress)
	u.progress = make(chan struct{})
}

// uploadLoop ships the spool until ctx ends.
func (d *DB) uploadLoop(ctx context.Context) {
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.up.wake:
		}
		for ctx.Err() == nil {
			d.up.mu.Lock()
			pending := d.up.last > d.up.uploaded.TXID
			wait := d.r.opts.SyncInterval - time.Since(d.up.lastPut)
			if d.up.flushing > 0 {
				wait = 0
			}
			d.up.mu.Unlock()
			if !pending {
				break
			}
			if wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				case <-d.up.wake: // a flush request cuts the wait short
				}
				continue
			}
			before := d.uploadedTXID()
			err := d.uploadOnce(ctx)
			since, failures := d.up.result(err, time.Now())
			if err == nil {
				if failures > 0 {
					d.log.Info("uploads succeed again", "failed_for", time.Since(since).Round(time.Second), "failed_attempts", failures)
				}
				backoff = time.Second
				if d.uploadedTXID() == before {
					break // nothing could be taken yet; wait for the next wake-up
				}
				continue
			}
			if ctx.Err() != nil {
				return
			}
			d.log.Error("upload failed; will retry (commits keep going to the local spool)",
				"failing_since", since.Format(time.RFC3339), "attempts", failures, "retry_in", backoff, "err", err)
			if !waitCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

// maxBatchBytes bounds the spooled bytes merged into one level-0 upload.
const maxBatchBytes = 256 << 20

// uploadOnce uploads everything pending in the spool, whatever its shape:
// the newest spooled snapshot, which makes what was spooled before it
// unnecessary (queue.go), then every closed segment after it merged into
// one level-0 file (up to maxBatchBytes). One batch per sync interval must
// keep up with any number of commits and snapshots.
func (d *DB) uploadOnce(ctx context.Context) error {
	d.upMu.Lock()
	defer d.upMu.Unlock()
	limit, err := d.spool.closeSegment() // segments starting after limit were opened after it
	if err != nil {
		return err
	}
	entries, err := d.spool.list()
	if err != nil {
		return err
	}
	if entries, err = d.supersede(entries); err != nil {
		return err
	}
	if len(entries) > 0 && entries[0].Snapshot {
		if err := d.uploadSnapshot(ctx, entries[0]); err != nil {
			return err
		}
		entries = entries[1:]
	}
	if len(entries) == 0 {
		return nil
	}
	var segs []spoolEntry
	var recs [][]record
	var total int64
	next := d.uploadedTXID() + 1
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
		if len(rs) == 0 {
			os.Remove(e.Path) // empty, or all of it is in the store already
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
	return d.uploadSegments(ctx, segs, recs)
}

func (d *DB) uploadSnapshot(ctx context.Context, e spoolEntry) error {
	f, err := os.Open(e.Path)
	if err != nil {
		return fmt.Errorf("open spooled snapshot: %w", err)
	}
	defer f.Close()
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
	info := s3backend.FileInfo{DB: d.rel, Level: s3backend.LevelSnapshot, MinTXID: 1, MaxTXID: e.TXID, CreatedAt: time.UnixMilli(hdr.Timestamp)}
	return d.put(ctx, info, f, fi.Size(), Pos{TXID: e.TXID, Checksum: trailer.PostApplyChecksum}, []string{e.Path}, 1)
}

func (d *DB) uploadSegments(ctx context.Context, segs []spoolEntry, recs [][]record) error {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
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
	body, size, hdr, trailer, cleanup, err := d.mergeBatch(inputs)
	if err != nil {
		return fmt.Errorf("merge spooled transactions of %s: %w", d.rel, err)
	}
	defer cleanup()
	last := uint64(hdr.MaxTXID)
	var paths []string // segments wholly in this batch; a partial one stays
	for i, e := range segs {
		if rs := recs[i]; rs[len(rs)-1].TXID <= last {
			paths = append(paths, e.Path)
		}
	}
	info := s3backend.FileInfo{
		DB: d.rel, Level: s3backend.LevelL0, MinTXID: uint64(hdr.MinTXID), MaxTXID: uint64(hdr.MaxTXID),
		CreatedAt: time.UnixMilli(hdr.Timestamp),
	}
	return d.put(ctx, info, body, size, Pos{TXID: last, Checksum: trailer.PostApplyChecksum}, paths, int(last-uint64(hdr.MinTXID)+1))
}

// put uploads one object, records the new position and drops the spool
// files it came from.
func (d *DB) put(ctx context.Context, info s3backend.FileInfo, body io.Reader, size int64, pos Pos, spoolFiles []string, txns int) error {
	start := time.Now()
	if _, err := d.r.opts.Store.Write(ctx, info, body, size); err != nil {
		return fmt.Errorf("upload %s: %w", s3backend.Key(info), err)
	}
	if err := savePos(d.r.stateDir, d.rel, pos); err != nil {
		return err
	}
	for _, p := range spoolFiles {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove uploaded spool file: %w", err)
		}
	}
	d.up.mu.Lock()
	d.up.uploaded = pos
	d.up.lastPut = time.Now()
	d.up.mu.Unlock()
	d.log.Debug("uploaded", "key", s3backend.Key(info), "bytes", size, "txns", txns, "took", time.Since(start))
	return nil
}

// syncCommit uploads everything spooled up to txid and waits for the store to
// acknowledge it (durability sync). It runs in the committing FUSE request,
// so SQLite's commit does not return before the store has the transaction.
func (d *DB) syncCommit(txid uint64) error {
	ctx, cancel := context.WithTimeout(d.r.ctx, d.r.opts.SyncTimeout)
	defer cancel()
	if err := d.uploadThrough(ctx, txid); err != nil {
		return fmt.Errorf("store did not acknowledge transaction %d within the sync timeout %s, so the commit fails (durability sync): %w", txid, d.r.opts.SyncTimeout, err)
	}
	return nil
}

// uploadThrough uploads the spool in the calling goroutine, without waiting
// for the sync interval, until the store holds txid or ctx ends. Callers
// holding d.mu (a sync commit, verify) know that nothing is spooled after
// txid meanwhile, so the last upload ends exactly there.
func (d *DB) uploadThrough(ctx context.Context, txid uint64) error {
	var lastErr error
	for {
		before := d.uploadedTXID()
		if before >= txid {
			return nil
		}
		if ctx.Err() != nil {
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return lastErr
		}
		err := d.uploadOnce(ctx)
		d.up.result(err, time.Now())
		switch {
		case err != nil:
			lastErr = err
			waitCtx(ctx, 100*time.Millisecond)
		case d.uploadedTXID() == before:
			waitCtx(ctx, 10*time.Millisecond) // nothing could be taken yet (the uploader has it): look again
		}
	}
}

// memMergeLimit is how many spooled bytes a batch may merge in memory. An
// in-memory merge holds the staged pages and the encoded batch at once, and
// the Go heap doubles what is live before it collects: at 32 MiB a busy
// database kept walfs's RSS above 200 MB.
const memMergeLimit = 8 << 20

// mergeBatch merges records into one LTX body: in memory for ordinary
// batches, through temp files for big ones. When the disk is full it falls
// back to the part of the batch that fits in memory, so uploads (which free
// spool space) keep going.
func (d *DB) mergeBatch(inputs []spoolRecord) (io.Reader, int64, ltx.Header, ltx.Trailer, func(), error) {
	var total int64
	for _, in := range inputs {
		total += in.Len
	}
	if total > memMergeLimit {
		// A merge on disk needs about twice the batch (staged pages, then
		// the batch file). When that would eat the space the app needs,
		// upload smaller batches from memory instead: they free spool space.
		var err error = syscall.ENOSPC
		if free, ok := freeBytes(d.r.stateDir); !ok || free > 4*total {
			var body io.Reader
			var size int64
			var hdr ltx.Header
			var trailer ltx.Trailer
			var cleanup func()
			body, size, hdr, trailer, cleanup, err = d.mergeOnDisk(inputs)
			if err == nil || !errors.Is(err, syscall.ENOSPC) {
				return body, size, hdr, trailer, cleanup, err
			}
		}
		d.log.Warn("little disk space for merging spooled transactions: uploading a smaller batch from memory", "err", err)
		total = 0
		for i, in := range inputs {
			if total += in.Len; total > memMergeLimit && i > 0 {
				inputs = inputs[:i]
				break
			}
		}
	}
	var buf bytes.Buffer
	hdr, trailer, err := mergeRecords(inputs, &buf, "")
	if err != nil {
		return nil, 0, ltx.Header{}, ltx.Trailer{}, nil, err
	}
	return bytes.NewReader(buf.Bytes()), int64(buf.Len()), hdr, trailer, func() {}, nil
}

func (d *DB) mergeOnDisk(inputs []spoolRecord) (io.Reader, int64, ltx.Header, ltx.Trailer, func(), error) {
	fail := func(err error) (io.Reader, int64, ltx.Header, ltx.Trailer, func(), error) {
		return nil, 0, ltx.Header{}, ltx.Trailer{}, nil, err
	}
	tmpDir := filepath.Join(d.r.stateDir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return fail(err)
	}
	out, err := os.CreateTemp(tmpDir, "batch-*.ltx")
	if err != nil {
		return fail(fmt.Errorf("create batch file: %w", err))
	}
	cleanup := func() { out.Close(); os.Remove(out.Name()) }
	bw := bufio.NewWriterSize(out, 256<<10)
	hdr, trailer, err := mergeRecords(inputs, bw, tmpDir)
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil {
		size, err = out.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return fail(err)
	}
	return out, size, hdr, trailer, cleanup, nil
}
