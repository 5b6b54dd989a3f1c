package replicate

import (
	"context"
	"errors"
	"fmt"
	"github.com/walfs/walfs/wal"
	"io"
	"os"
	"strings"
)

// resume works out where the replica of d stands: the spool (committed
// locally, not yet uploaded), the saved position (last upload) and the
// store itself. If the local database does not match that position, the
// next TXID becomes a snapshot.
func (d *DB) resume(ctx context.Context, atStart bool) error {
	entries, spoolPos, err := d.scanSpool()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Snapshot {
			d.spool.resumed(e.last) // closed segments the uploader may take
		}
	}
	saved, remote, err := d.up.positions(ctx)
	if err != nil {
		return err
	}
	uploaded := saved
	if remote.TXID > uploaded.TXID {
		uploaded = remote
	}
	d.up.resumeAt(uploaded)
	for len(entries) > 0 && entries[0].last <= uploaded.TXID {
		// Uploaded but not yet removed when walfs stopped.
		os.Remove(entries[0].Path)
		entries = entries[1:]
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
		defer f.Close()
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
		d.log.Info("database matches its replica; continuing", "txid", pos.TXID, "pending_upload", len(entries))
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

// scanSpool checks the spool left by a previous run: it cuts torn records
// off segments (a record that does not verify was never acknowledged to
// SQLite) and returns the entries and the position after the last one.
func (d *DB) scanSpool() ([]scannedEntry, Pos, error) {
	entries, err := d.spool.list()
	if err != nil {
		return nil, Pos{}, err
	}
	var out []scannedEntry
	var pos Pos
	for _, e := range entries {
		if strings.HasSuffix(e.Path, ".tmp") {
			continue
		}
		f, err := os.OpenFile(e.Path, os.O_RDWR, 0)
		if err != nil {
			return nil, Pos{}, fmt.Errorf("open spool file: %w", err)
		}
		if e.Snapshot {
			_, trailer, err := readLTXTrailer(f)
			f.Close()
			if err != nil {
				d.log.Warn("discarding incomplete spooled snapshot", "path", e.Path, "err", err)
				os.Remove(e.Path)
				continue
			}
			pos = Pos{TXID: e.TXID, Checksum: trailer.PostApplyChecksum}
			out = append(out, scannedEntry{e, e.TXID})
			continue
		}
		recs, end, err := readRecords(e.Path)
		if err == nil {
			if fi, serr := f.Stat(); serr == nil && fi.Size() > end {
				d.log.Warn("cutting torn record off spool segment", "path", e.Path, "bytes", fi.Size()-end)
				err = f.Truncate(end)
			}
		}
		if err == nil && len(recs) > 0 {
			var h rawTxn
			h, err = readRawHeader(f, recs[len(recs)-1])
			pos = Pos{TXID: recs[len(recs)-1].TXID, Checksum: h.Post}
		}
		f.Close()
		if err != nil {
			return nil, Pos{}, fmt.Errorf("check spool segment %s: %w", e.Path, err)
		}
		if len(recs) == 0 {
			os.Remove(e.Path)
			continue
		}
		out = append(out, scannedEntry{e, recs[len(recs)-1].TXID})
	}
	return out, pos, nil
}
