package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/superfly/ltx"
)

// spoolWriter appends one database's captured transactions to its spool
// (spool.go): a record per transaction into the open segment, a file per
// snapshot. It owns the open segment and the buffer records wait in.
//
// mu guards the fields below it. The capture side (DB, holding DB.mu)
// appends and syncs; the uploader (closeSegment), and WALSync, Flush and
// Close (sync) come without DB.mu. mu is held across the segment's own
// writes and fsync, and across the build of a record (which reads its pages
// from the WAL or the database file), never while taking another lock.
//
// No buffer grows with the transaction: a record streams through recBuf to
// the segment in chunks of recordChunk, so after a transaction of a
// gigabyte walfs holds what it held before it. recBuf comes from bufPool
// and goes back once empty, so a quiet database holds none.
type spoolWriter struct {
	spool        // the directory; fixed
	rel   string // the database, for errors

	mu        sync.Mutex
	seg       *os.File // open segment, nil until the next record
	segSize   int64    // bytes of complete records in seg
	segDirty  bool     // appended since the last fsync
	segLast   uint64   // last TXID appended to any segment
	recBuf    []byte   // records not yet written to seg (batching), then the one being built
	batching  bool     // records collect in recBuf until endBatch (during a poll)
	batchLast uint64   // highest TXID spooled since beginBatch
	// unsynced are the spool files written (or found at start) and not yet
	// known durable: snapshots and closed segments. dirDirty says a file
	// was created in the directory since its last fsync. Nothing on the
	// commit or upload path syncs them: SQLite synced the database and the
	// WAL, which hold every commit the spool holds, and a power cut that
	// takes spool files leaves the database past what remains, so the next
	// start drops what no longer chains onto the replica and spools a
	// snapshot (scan, resume). Only sync (walfs sync, a sync-durability
	// commit, a userspace WAL fsync, Close) makes them durable; the
	// uploader takes what it removes off the list (remove). Each of
	// those fsyncs was on the way of a database's first commits: syncing
	// the first snapshot before the first record after it cost creating
	// a small database two fsyncs on the app's path, and the segment one
	// more before its upload.
	unsynced []string
	dirDirty bool
}

// recordChunk is how many bytes of records recBuf holds before they are
// written to the segment, whatever the size of the transaction (a 200 MB
// transaction once left two 200 MB buffers behind, and with the mount's
// memory limit the collector then ran without pause).
const recordChunk = 512 << 10

func newSpoolWriter(sp spool, rel string) *spoolWriter {
	return &spoolWriter{spool: sp, rel: rel}
}

// recordRef locates a record just appended, so a failed synchronous commit
// can take it back out of the spool.
type recordRef struct {
	path string
	off  int64
}

// appendTxn appends transaction txid to the open segment as one record,
// opening a new segment if needed: its raw header h (Post and NPages are
// filled in at the end), then the pages build adds with txnRecord.page;
// build returns the post-apply checksum. Each page is copied once, from
// where build reads it into the buffer that goes to the segment. written
// reports that the record is in the segment file; while batching a small
// one waits in memory for endBatch. On failure the segment is cut back, so
// it never holds a torn record.
func (w *spoolWriter) appendTxn(txid uint64, h rawTxn, build func(rec *txnRecord) (ltx.Checksum, error)) (ref recordRef, written bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.releaseBuf()
	if w.seg == nil {
		if err := w.openSegment(txid); err != nil {
			return recordRef{}, false, err
		}
	}
	if len(w.recBuf) >= recordChunk {
		if err := w.flushRecords(); err != nil {
			return recordRef{}, false, err
		}
	}
	rec := w.beginRecord(txid, h)
	ref = recordRef{path: w.seg.Name(), off: w.segSize + int64(rec.at)}
	post, err := build(rec)
	if err == nil {
		err = rec.finish(post)
	}
	if err != nil {
		return recordRef{}, false, errors.Join(err, rec.abort())
	}
	w.segLast = txid
	if w.batching {
		w.batchLast = txid
	}
	return ref, !w.batching, nil
}

// txnRecord is one record being appended (appendTxn, under w.mu). Its bytes
// start in w.recBuf and go to the segment whenever recBuf reaches
// recordChunk; its two headers, which depend on everything after them, are
// patched in last, in memory or in the file.
type txnRecord struct {
	w        *spoolWriter
	head     [recordHeaderSize + rawHeaderSize]byte
	pageSize int
	npages   uint32
	at       int    // index in w.recBuf of the record's first byte; -1 once it went to the file (at w.segSize)
	flushed  int64  // bytes of the record already in the file
	crcFrom  int    // w.recBuf[crcFrom:] is not in crc yet
	crc      uint32 // CRC of the payload after its raw header, so far
}

// beginRecord starts record txid in recBuf. Caller holds w.mu.
func (w *spoolWriter) beginRecord(txid uint64, h rawTxn) *txnRecord {
	if w.recBuf == nil {
		w.recBuf = getBuf()
	}
	r := &txnRecord{w: w, pageSize: int(h.PageSize), at: len(w.recBuf)}
	copy(r.head[:], recordMagic)
	binary.BigEndian.PutUint64(r.head[4:12], txid)
	appendRawHeader(r.head[recordHeaderSize:recordHeaderSize], h)
	w.recBuf = append(w.recBuf, r.head[:]...)
	r.crcFrom = len(w.recBuf)
	return r
}

// page appends page pgno to the record and returns the bytes its image
// goes in, which the caller fills before the next call.
func (r *txnRecord) page(pgno uint32) ([]byte, error) {
	w := r.w
	r.sum()
	if len(w.recBuf)+4+r.pageSize > recordChunk {
		if err := r.flush(); err != nil {
			return nil, err
		}
	}
	w.recBuf = binary.BigEndian.AppendUint32(w.recBuf, pgno)
	off := len(w.recBuf)
	w.recBuf = slices.Grow(w.recBuf, r.pageSize)[:off+r.pageSize]
	r.npages++
	return w.recBuf[off:], nil
}

// sum adds the bytes appended since the last call to crc, while they are
// in the cache.
func (r *txnRecord) sum() {
	r.crc = crc32.Update(r.crc, crcTable, r.w.recBuf[r.crcFrom:])
	r.crcFrom = len(r.w.recBuf)
}

// flush writes recBuf (records of the batch, then the start of this one)
// to the segment.
func (r *txnRecord) flush() error {
	w := r.w
	r.sum()
	n, err := w.seg.WriteAt(w.recBuf, w.segSize+r.flushed)
	if err == nil && n < len(w.recBuf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("append to spool: %w", err)
		if terr := w.seg.Truncate(w.segSize); terr != nil {
			err = errors.Join(err, fmt.Errorf("cut torn record off spool segment: %w", terr))
		}
		return err
	}
	if r.at >= 0 {
		w.segSize += int64(r.at) // the records before this one are complete
		r.flushed, r.at = int64(len(w.recBuf)-r.at), -1
	} else {
		r.flushed += int64(len(w.recBuf))
	}
	w.segDirty = true
	w.recBuf, r.crcFrom = w.recBuf[:0], 0
	return nil
}

// finish completes the headers. A record still in memory stays there while
// batching; otherwise it goes to the segment.
func (r *txnRecord) finish(post ltx.Checksum) error {
	w := r.w
	r.sum()
	n := r.flushed + int64(len(w.recBuf))
	if r.at >= 0 {
		n -= int64(r.at)
	}
	payload := n - recordHeaderSize
	setRawPost(r.head[recordHeaderSize:], post, r.npages)
	binary.BigEndian.PutUint32(r.head[12:16], uint32(payload))
	crc := crc32.Checksum(r.head[recordHeaderSize:], crcTable)
	binary.BigEndian.PutUint32(r.head[16:20], crc32Combine(crc, r.crc, payload-rawHeaderSize))
	if r.at >= 0 {
		copy(w.recBuf[r.at:], r.head[:])
		if w.batching {
			return nil
		}
		return w.flushRecords()
	}
	// Part of it is in the file: write the rest, then its headers.
	if len(w.recBuf) > 0 {
		if err := r.flush(); err != nil {
			return err
		}
	}
	if _, err := w.seg.WriteAt(r.head[:], w.segSize); err != nil {
		return fmt.Errorf("append to spool: %w", err)
	}
	w.segSize += r.flushed
	r.flushed = 0
	return nil
}

// abort takes the failed record back out: out of recBuf (the records
// batched before it stay there) and, if part of it reached the segment,
// out of the file.
func (r *txnRecord) abort() error {
	w := r.w
	if r.at >= 0 {
		w.recBuf = w.recBuf[:r.at]
		return nil
	}
	w.recBuf = w.recBuf[:0]
	if err := w.seg.Truncate(w.segSize); err != nil {
		// The next write starts at segSize and covers the torn bytes;
		// until then a restart cuts them off (scan).
		return fmt.Errorf("cut torn record off spool segment: %w", err)
	}
	return nil
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
	w.seg, w.segSize, w.dirDirty = f, 0, true
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

// flush writes the records still waiting in memory (a write that failed,
// disk full) to the open segment, without an fsync.
func (w *spoolWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seg == nil {
		return nil
	}
	if err := w.flushRecords(); err != nil {
		return fmt.Errorf("spool transactions of %s: %w", w.rel, err)
	}
	return nil
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
	w.recBuf = w.recBuf[:0]
	w.releaseBuf()
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
	w.mu.Lock()
	w.unsynced = append(w.unsynced, path)
	w.dirDirty = true
	w.mu.Unlock()
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
	if w.segDirty {
		w.unsynced = append(w.unsynced, f.Name())
		w.segDirty = false
	}
	if err := f.Close(); err != nil {
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
	if w.seg != nil {
		if err := w.flushRecords(); err != nil {
			return err
		}
	}
	if err := w.syncFiles(); err != nil {
		return err
	}
	if w.seg != nil && w.segDirty {
		if err := w.seg.Sync(); err != nil {
			return fmt.Errorf("fsync spool of %s: %w", w.rel, err)
		}
		w.segDirty = false
	}
	if w.dirDirty {
		if err := syncDir(w.dir); err != nil {
			return err
		}
		w.dirDirty = false
	}
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
	w.recBuf = w.recBuf[:0]
	w.releaseBuf()
}

// releaseBuf gives recBuf back to bufPool once it holds nothing: a quiet
// database keeps no buffer (with 10,000 databases written once, kept
// buffers were 40 KB of each one's memory). Caller holds w.mu.
func (w *spoolWriter) releaseBuf() {
	if w.recBuf != nil && len(w.recBuf) == 0 {
		putBuf(w.recBuf)
		w.recBuf = nil
	}
}

// bufPool holds the record buffers of spoolWriters between commits
// (*[]byte). They are at most recordChunk plus a page.
var bufPool sync.Pool

// getBuf returns an empty buffer, reused when one is free.
func getBuf() []byte {
	if b, ok := bufPool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// putBuf gives b back for reuse; the caller no longer touches it.
func putBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// remove removes spool files that hold nothing left to upload (uploaded,
// superseded) and takes them off the unsynced list, which so names only
// files that exist: a database that went quiet after its upload lists
// nothing. One already gone is fine.
func (w *spoolWriter) remove(paths ...string) error {
	for _, p := range paths {
		if err := removeSpoolFile(p); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unsynced = slices.DeleteFunc(w.unsynced, func(p string) bool { return slices.Contains(paths, p) })
	if len(w.unsynced) == 0 {
		w.unsynced = nil
	}
	return nil
}

// syncFiles fsyncs the unsynced spool files and forgets them; one already
// gone was uploaded (or superseded, or its commit failed). The caller syncs
// the directory. Caller holds w.mu.
func (w *spoolWriter) syncFiles() error {
	for len(w.unsynced) > 0 {
		f, err := os.Open(w.unsynced[0])
		if errors.Is(err, fs.ErrNotExist) {
			w.unsynced = w.unsynced[1:]
			continue
		}
		if err != nil {
			return fmt.Errorf("open spool file to sync it: %w", err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("fsync spool file: %w", err)
		}
		w.unsynced = w.unsynced[1:]
	}
	w.unsynced = nil
	return nil
}
