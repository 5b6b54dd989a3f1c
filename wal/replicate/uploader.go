package replicate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// maxBatchFiles bounds how many spooled transactions go into one level-0
// upload.
const maxBatchFiles = 4096

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
			err := d.uploadOnce(ctx)
			d.up.mu.Lock()
			d.up.lastErr = err
			d.up.notify()
			d.up.mu.Unlock()
			if err == nil {
				backoff = time.Second
				continue
			}
			if ctx.Err() != nil {
				return
			}
			d.log.Error("upload failed; will retry (commits keep going to the local spool)", "retry_in", backoff, "err", err)
			if !waitCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

// uploadOnce uploads the next batch of the spool: a snapshot alone, or a run
// of contiguous transactions merged into one level-0 file.
func (d *DB) uploadOnce(ctx context.Context) error {
	d.up.mu.Lock()
	limit := d.up.last
	d.up.mu.Unlock()
	entries, err := d.spool.list()
	if err != nil {
		return err
	}
	var batch []spoolEntry
	for _, e := range entries {
		if e.TXID > limit {
			break
		}
		if e.Snapshot {
			if len(batch) == 0 {
				batch = append(batch, e)
			}
			break
		}
		if len(batch) > 0 && e.TXID != batch[len(batch)-1].TXID+1 {
			break
		}
		batch = append(batch, e)
		if len(batch) == maxBatchFiles {
			break
		}
	}
	if len(batch) == 0 {
		return nil
	}
	first, last := batch[0], batch[len(batch)-1]
	hdr, trailer, err := readEntry(last.Path)
	if err != nil {
		return err
	}
	info := s3backend.FileInfo{
		DB: d.rel, Level: s3backend.LevelL0, MinTXID: first.TXID, MaxTXID: last.TXID,
		CreatedAt: time.UnixMilli(hdr.Timestamp),
	}
	if first.Snapshot {
		info.Level, info.MinTXID = s3backend.LevelSnapshot, 1
	}
	src, size, cleanup, err := d.batchFile(ctx, batch)
	if err != nil {
		return err
	}
	defer cleanup()
	start := time.Now()
	if _, err := d.r.opts.Store.Write(ctx, info, src, size); err != nil {
		return fmt.Errorf("upload %s: %w", s3backend.Key(info), err)
	}
	pos := Pos{TXID: last.TXID, Checksum: trailer.PostApplyChecksum}
	if err := savePos(d.r.stateDir, d.rel, pos); err != nil {
		return err
	}
	for _, e := range batch {
		if err := os.Remove(e.Path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove uploaded spool file: %w", err)
		}
	}
	d.up.mu.Lock()
	d.up.uploaded = pos
	d.up.lastPut = time.Now()
	d.up.mu.Unlock()
	d.log.Debug("uploaded", "key", s3backend.Key(info), "bytes", size, "txns", len(batch), "took", time.Since(start))
	return nil
}

// batchFile returns the upload body for a batch: the spool file itself for
// one entry, else the entries merged by the LTX compactor into a temp file.
func (d *DB) batchFile(ctx context.Context, batch []spoolEntry) (io.ReadSeeker, int64, func(), error) {
	if len(batch) == 1 {
		f, err := os.Open(batch[0].Path)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("open spool file: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, nil, err
		}
		return f, fi.Size(), func() { f.Close() }, nil
	}
	tmpDir := filepath.Join(d.r.stateDir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, 0, nil, err
	}
	out, err := os.CreateTemp(tmpDir, "batch-*.ltx")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("create batch file: %w", err)
	}
	cleanup := func() { out.Close(); os.Remove(out.Name()) }
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	readers := make([]io.Reader, 0, len(batch))
	for _, e := range batch {
		f, err := os.Open(e.Path)
		if err != nil {
			cleanup()
			return nil, 0, nil, fmt.Errorf("open spool file: %w", err)
		}
		files = append(files, f)
		readers = append(readers, bufio.NewReaderSize(f, 16<<10))
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	c, err := ltx.NewCompactor(bw, readers)
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	c.SetSpillDir(tmpDir)
	if err := c.Compact(ctx); err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("merge %d spooled transactions: %w", len(batch), err)
	}
	if err := bw.Flush(); err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	size, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return out, size, cleanup, nil
}
