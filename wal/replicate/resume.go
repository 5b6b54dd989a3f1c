package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/wal"
)

// resume works out where the replica of d stands: the spool (committed
// locally, not yet uploaded), the saved position (last upload) and the
// store itself. If the local database does not match that position, the
// next TXID becomes a snapshot. It runs before d is shared.
func (d *DB) resume(ctx context.Context, atStart bool) error {
	saved, remote, err := d.up.positions(ctx)
	if err != nil {
		return err
	}
	uploaded := saved
	if remote.TXID > uploaded.TXID {
		uploaded = remote
	}
	d.up.resumeAt(uploaded)
	entries, spoolPos, err := d.spool.scan(d.log, uploaded.TXID)
	if err != nil {
		return err
	}
	pos := uploaded
	if len(entries) > 0 {
		pos = spoolPos
		d.up.spooled(spoolPos.TXID)
	}
	d.txid = max(pos.TXID, uploaded.TXID, saved.TXID, remote.TXID)
	if !atStart {
		// Opened by a FUSE request: the WAL open that follows decides.
		d.needSnap = true
		return nil
	}
	f, err := os.Open(d.path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		f = nil
	} else if err != nil {
		return fmt.Errorf("open wal of %s: %w", d.rel, err)
	}
	var r io.ReaderAt
	if f != nil {
		defer f.Close() // read only
		r = f
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	idx, err := d.loadAtStart(f)
	if err != nil {
		return err
	}
	if idx == nil && d.journalLive() {
		// A rollback-journal transaction was cut short (by a crash of the
		// app or of walfs): the next commit, or SQLite's rollback of the
		// hot journal, decides what the database is.
		d.needSnap = true
		d.log.Info("database has a hot rollback journal: the next commit writes a snapshot")
		return nil
	}
	sums, err := d.computeSums(r, idx)
	if err != nil {
		return err
	}
	if pos.TXID > 0 && sums != nil && sums.checksum() == pos.Checksum {
		d.sums = sums
		d.log.Debug("database matches its replica; continuing", "txid", pos.TXID, "pending_upload", len(entries))
		return nil
	}
	if pos.TXID > 0 && idx != nil {
		// Most often walfs died after SQLite committed and before the spool
		// had the transaction: the WAL still holds it.
		if ok, err := d.replayWAL(f, pos); err != nil || ok {
			return err
		}
	}
	if pos.TXID > 0 {
		d.log.Warn("database does not match its replica (changed while walfs was not running?): writing a new snapshot", "replica_txid", pos.TXID)
	}
	d.needSnap = true
	return d.snapshot(nil, r, idx, false)
}

// loadAtStart positions the capture on the WAL found at start, if any.
// Caller holds d.mu.
func (d *DB) loadAtStart(f *os.File) (*wal.Index, error) {
	if f == nil {
		d.stamp = stampOf(d.path)
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat wal of %s: %w", d.rel, err)
	}
	idx, err := d.capture.Load(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("load wal of %s: %w", d.rel, err)
	}
	d.walLoaded, d.walSize = true, fi.Size()
	if d.env.capture == CapturePassthrough {
		if err := d.openWALReader(); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// scannedEntry is a spool entry with the last TXID it holds.
type scannedEntry struct {
	spoolEntry
	last uint64
}

// scan checks the spool left by a previous run: it cuts torn records off
// segments (a record that does not verify was never acknowledged to
// SQLite), removes what holds nothing to upload (the files the store has
// through TXID uploaded, and what no longer chains onto it), and returns the
// entries and the position after the last one. The closed segments it
// found are the uploader's to take.
func (w *spoolWriter) scan(log *slog.Logger, uploaded uint64) ([]scannedEntry, Pos, error) {
	entries, err := w.list()
	if err != nil {
		return nil, Pos{}, err
	}
	var out []scannedEntry
	var pos Pos
	next := uploaded + 1 // the TXID the next entry must reach back to
	for _, e := range entries {
		if strings.HasSuffix(e.Path, ".tmp") {
			continue
		}
		var last uint64
		var post ltx.Checksum
		if e.Snapshot {
			trailer, bad, err := verifySpooledSnapshot(e.Path)
			if err != nil {
				return nil, Pos{}, err
			}
			if bad != nil {
				log.Warn("discarding incomplete spooled snapshot", "path", e.Path, "err", bad)
				if err := removeSpoolFile(e.Path); err != nil {
					return nil, Pos{}, err
				}
				continue
			}
			last, post = e.TXID, trailer.PostApplyChecksum
		} else {
			recs, h, err := checkSegment(log, e.Path)
			if err != nil {
				return nil, Pos{}, fmt.Errorf("check spool segment %s: %w", e.Path, err)
			}
			if len(recs) == 0 {
				if err := removeSpoolFile(e.Path); err != nil {
					return nil, Pos{}, err
				}
				continue
			}
			last, post = recs[len(recs)-1].TXID, h.Post
		}
		if last <= uploaded {
			// Uploaded but not yet removed when walfs stopped.
			if err := removeSpoolFile(e.Path); err != nil {
				return nil, Pos{}, err
			}
			continue
		}
		if !e.Snapshot && e.TXID > next {
			// The file before it is gone: a power cut took spool files
			// nothing had synced (spoolWriter.unsynced). The uploader
			// could never chain this one on; the database holds what it
			// held, and resume spools a snapshot of it. (A snapshot later
			// in the spool needs nothing before it.)
			log.Warn("spool file lost (a power cut?): dropping one that no longer follows; the database is snapshotted instead", "path", e.Path, "missing_txid", next)
			if err := removeSpoolFile(e.Path); err != nil {
				return nil, Pos{}, err
			}
			continue
		}
		next = last + 1
		pos = Pos{TXID: last, Checksum: post}
		out = append(out, scannedEntry{e, last})
		w.mu.Lock()
		w.unsynced = append(w.unsynced, e.Path) // complete, but perhaps never synced
		w.dirDirty = true
		if !e.Snapshot {
			w.segLast = max(w.segLast, last)
		}
		w.mu.Unlock()
	}
	return out, pos, nil
}

// verifySpooledSnapshot verifies a spooled snapshot and returns its
// trailer; bad says why it is incomplete (walfs died while writing it).
func verifySpooledSnapshot(path string) (trailer ltx.Trailer, bad, err error) {
	f, err := os.Open(path)
	if err != nil {
		return ltx.Trailer{}, nil, fmt.Errorf("open spool file: %w", err)
	}
	defer f.Close() // read only
	_, trailer, bad = readLTXTrailer(f)
	return trailer, bad, nil
}

// checkSegment cuts a torn record off the segment at path and returns its
// records and the header of the last one.
func checkSegment(log *slog.Logger, path string) (recs []record, last rawTxn, err error) {
	recs, end, err := readRecords(path)
	if err != nil {
		return nil, rawTxn{}, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, rawTxn{}, fmt.Errorf("open spool file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, rawTxn{}, err
	}
	if fi.Size() > end {
		log.Warn("cutting torn record off spool segment", "path", path, "bytes", fi.Size()-end)
		if err := f.Truncate(end); err != nil {
			return nil, rawTxn{}, err
		}
	}
	if len(recs) > 0 {
		if last, err = readRawHeader(f, recs[len(recs)-1]); err != nil {
			return nil, rawTxn{}, err
		}
	}
	return recs, last, nil
}

// removeSpoolFile removes a spool file that holds nothing left to upload.
// One that stayed would be read again by every upload.
func removeSpoolFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove spool file: %w", err)
	}
	return nil
}
