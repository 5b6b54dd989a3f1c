package replicate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/superfly/ltx"
)

// spoolWriter appends one database's captured transactions to its spool
// (spool.go): a record per transaction into the open segment, a file per
// snapshot. It owns the open segment and the buffers records wait in.
//
// mu guards the fields below it. The capture side (DB, holding DB.mu)
// appends and syncs; the uploader (closeSegment), and WALSync, Flush and
// Close (sync) come without DB.mu. mu is held across the segment's own
// writes and fsync, never while taking another lock.
//
// The buffers a transaction is built and batched in come from bufPool and
// go back once written: a database keeps none while it is quiet (with
// 10,000 databases written once, the kept buffers were 40 KB of each
// one's memory).
type spoolWriter struct {
	spool        // the directory; fixed
	rel   string // the database, for errors

	mu        sync.Mutex
	seg       *os.File // open segment, nil until the next record
	segSize   int64
	segDirty  bool   // appended since the last fsync
	segLast   uint64 // last TXID appended to any segment
	recBuf    []byte // records not yet written to seg (batching), or the one being written; nil when none
	batching  bool   // records collect in recBuf until endBatch (during a poll)
	batchLast uint64 // highest TXID spooled since beginBatch
}

func newSpoolWriter(sp spool, rel string) *spoolWriter {
	return &spoolWriter{spool: sp, rel: rel}
}

// recordRef locates a record just appended, so a failed synchronous commit
// can take it back out of the spool.
type recordRef struct {
	path string
	off  int64
}

// appendTxn builds the payload of transaction txid with build (into a
// buffer reused between commits) and appends it to the open segment as one
// record, opening a new segment if needed. written reports that the record
// is in the segment file; while batching it waits in memory for endBatch.
// On failure the segment is cut back, so it never holds a torn record.
func (w *spoolWriter) appendTxn(txid uint64, build func(buf []byte) ([]byte, error)) (ref recordRef, written bool, err error) {
	payload, err := build(getBuf())
	defer putBuf(payload) // appendRecord copies it
	if err != nil {
		return recordRef{}, false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg == nil {
		if err := w.openSegment(txid); err != nil {
			return recordRef{}, false, err
		}
	}
	ref = recordRef{path: w.seg.Name(), off: w.segSize + int64(len(w.recBuf))}
	before := len(w.recBuf)
	if w.recBuf == nil {
		w.recBuf = getBuf()
	}
	w.recBuf = appendRecord(w.recBuf, txid, payload)
	if w.batching {
		w.segLast, w.batchLast = txid, txid
		return ref, false, nil
	}
	if err := w.flushRecords(); err != nil {
		w.recBuf = w.recBuf[:before] // this one is not spooled; older ones wait for the next flush
		return recordRef{}, false, err
	}
	w.segLast = txid
	return ref, true, nil
}

// openSegment creates the segment whose first record is txid. Caller holds
// w.mu.
func (w *spoolWriter) openSegment(txid uint64) error {
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return fmt.Errorf("create spool dir: %w", err)
	}
	f, err := os.OpenFile(w.segmentPath(txid), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		// An empty segment left behind is harmless (the uploader removes
		// it), but say so if it is.
		return errors.Join(err, f.Close(), os.Remove(f.Name()))
	}
	w.seg, w.segSize = f, 0
	return nil
}

// beginBatch makes the records of the transactions spooled until endBatch
// collect in memory and reach the segment in one write.
func (w *spoolWriter) beginBatch() {
	w.mu.Lock()
	w.batching = true
	w.mu.Unlock()
}

// endBatch writes the collected records and returns the highest TXID
// spooled since beginBatch (0 if none) for the uploader. If the write fails
// (disk full), the records stay in memory and every later flush, sync or
// rotation tries again; until one succeeds, sync fails, and with it the
// database fsync that would let a checkpoint complete, so the WAL keeps the
// transactions too.
func (w *spoolWriter) endBatch() (last uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batching = false
	last, w.batchLast = w.batchLast, 0
	if err := w.flushRecords(); err != nil {
		return 0, fmt.Errorf("spool transactions of %s: %w", w.rel, err)
	}
	return last, nil
}

// flushRecords writes the records collected in recBuf to the open segment
// with one write: a poll in passthrough mode spools many transactions, and a
// write per transaction was a quarter of walfs's CPU under 1-row commits.
// On failure the segment is cut back, so it never holds a torn record, and
// the records stay in recBuf for the next attempt. Caller holds w.mu.
func (w *spoolWriter) flushRecords() error {
	if len(w.recBuf) == 0 {
		return nil
	}
	n, err := w.seg.WriteAt(w.recBuf, w.segSize)
	if err != nil || n < len(w.recBuf) {
		if err == nil {
			err = io.ErrShortWrite
		}
		err = fmt.Errorf("append to spool: %w", err)
		if terr := w.seg.Truncate(w.segSize); terr != nil {
			// The next write starts at segSize and covers the torn bytes;
			// until then a restart cuts them off (scan).
			err = errors.Join(err, fmt.Errorf("cut torn record off spool segment: %w", terr))
		}
		return err
	}
	w.segSize += int64(n)
	w.segDirty = true
	putBuf(w.recBuf)
	w.recBuf = nil
	return nil
}

// unappend removes the record at ref (the newest in the spool). The segment
// may have been rotated meanwhile; it is cut back either way.
func (w *spoolWriter) unappend(ref recordRef) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg != nil && w.seg.Name() == ref.path {
		w.segSize = ref.off
		return w.seg.Truncate(ref.off)
	}
	if ref.off == 0 {
		return os.Remove(ref.path)
	}
	return os.Truncate(ref.path, ref.off)
}

// writeSnapshot spools a whole-database LTX file as TXID txid, encoded by
// fill. It closes the open segment first: segments never straddle a
// snapshot. written is as for appendTxn (a snapshot taken during a batch is
// reported by endBatch).
func (w *spoolWriter) writeSnapshot(txid uint64, hdr ltx.Header, fill func(enc *ltx.Encoder) (ltx.Checksum, error)) (path string, written bool, err error) {
	w.mu.Lock()
	err = w.rotate()
	batching := w.batching // changes only under DB.mu, which the caller holds
	w.mu.Unlock()
	if err != nil {
		return "", false, err
	}
	path = w.snapshotPath(txid)
	if err := writeLTXFile(path, hdr, fill); err != nil {
		return "", false, fmt.Errorf("spool snapshot %d of %s: %w", txid, w.rel, err)
	}
	if batching {
		w.mu.Lock()
		w.batchLast = max(w.batchLast, txid)
		w.mu.Unlock()
	}
	return path, !batching, nil
}

// unspoolSnapshot removes the spooled snapshot at path, whose commit
// failed: left behind, it would upload a transaction SQLite never
// committed. Already gone is fine: the uploader took it.
func (w *spoolWriter) unspoolSnapshot(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove spooled snapshot of a failed commit: %w", err)
	}
	return nil
}

// rotate closes the open segment so the uploader can take it. Caller holds
// w.mu.
func (w *spoolWriter) rotate() error {
	if w.seg == nil {
		return nil
	}
	if err := w.flushRecords(); err != nil {
		return err
	}
	f := w.seg
	w.seg = nil
	var err error
	if w.segDirty {
		err = f.Sync()
		w.segDirty = false
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close spool segment: %w", err)
	}
	return nil
}

// closeSegment closes the open segment for the uploader and returns the
// last TXID appended to any segment: segments starting after it were opened
// after this call.
func (w *spoolWriter) closeSegment() (last uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	err = w.rotate()
	return w.segLast, err
}

// sync makes every spooled transaction durable on disk.
func (w *spoolWriter) sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg == nil {
		return nil
	}
	if err := w.flushRecords(); err != nil {
		return err
	}
	if !w.segDirty {
		return nil
	}
	if err := w.seg.Sync(); err != nil {
		return fmt.Errorf("fsync spool of %s: %w", w.rel, err)
	}
	w.segDirty = false
	return nil
}

// drop forgets the open segment and the records waiting in memory: their
// database was deleted, and the uploader removes its spool files (queue.go).
func (w *spoolWriter) drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg != nil {
		//walfs:ignore-error its records are dropped: whether they reached the disk no longer matters
		w.seg.Close()
		w.seg, w.segDirty = nil, false
	}
	putBuf(w.recBuf)
	w.recBuf = nil
}

// bufPool holds the buffers of spoolWriters between commits (*[]byte).
var bufPool sync.Pool

// maxPooledBuf bounds the buffers kept in bufPool: a huge transaction's
// buffer is left to the garbage collector.
const maxPooledBuf = 8 << 20

// getBuf returns an empty buffer, reused when one is free.
func getBuf() []byte {
	if b, ok := bufPool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// putBuf gives b back for reuse; the caller no longer touches it.
func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBuf {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// resumed records the last TXID of the closed segments a previous run
// left, which the uploader may take.
func (w *spoolWriter) resumed(segLast uint64) {
	w.mu.Lock()
	w.segLast = max(w.segLast, segLast)
	w.mu.Unlock()
}
