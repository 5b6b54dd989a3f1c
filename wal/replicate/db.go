package replicate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/wal"
)

// DB is one replicated database. Capture-side state is guarded by mu and
// changed only from FUSE requests (and Start); upload-side state lives in
// uploader.go.
type DB struct {
	rel  string // path relative to the data dir
	path string // backing file
	r    *Replicator
	log  *slog.Logger

	mu              sync.Mutex
	capture         *wal.Capture
	walLoaded       bool
	walSize         int64
	walf            *os.File  // walfs's own read handle on the WAL (passthrough mode)
	sums            *pageSums // nil until the database has been snapshotted
	txid            uint64    // last TXID assigned
	needSnap        bool      // next commit (or WAL open) writes a snapshot
	stamp           fileStamp // db file state when its WAL went away
	dirty           dirtySet  // written since the last rollback-journal commit
	warnedNoJournal bool
	kernelWrites    bool // a handle the kernel serves was opened since the last rollback-journal commit
	spool           spool
	upMu            sync.Mutex // one upload at a time per database
	segMu           sync.Mutex // guards the segment fields; never held while waiting on upMu
	seg             *os.File   // open spool segment, nil until the next commit
	segFirst        uint64
	segSize         int64
	segDirty        bool   // appended since the last fsync
	segLast         uint64 // last TXID appended to any segment
	rawBuf          []byte // record payload, reused between commits
	recBuf          []byte // records not yet written to seg (batching), or the one being written
	batching        bool   // records collect in recBuf until flushRecords (during a poll)

	up uploadState
}

// fileStamp identifies a version of the db file cheaply.
type fileStamp struct {
	size  int64
	mtime time.Time
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime()}
}

// commitSink adapts DB to wal.Sink; DB.mu is held by the caller of Wrote.
type commitSink struct{ d *DB }

func (s commitSink) Commit(txn *wal.Txn, r io.ReaderAt) error { return s.d.commit(txn, r) }

// walOpened loads the WAL the first time it is opened and decides whether
// the replica can continue from what it holds. Caller holds d.mu.
func (d *DB) walOpened(f *os.File) error {
	if d.walLoaded {
		// Loaded at start (resume.go); passthrough capture also needs its
		// read handle, or it would never see a commit.
		if d.r.opts.Capture == CapturePassthrough {
			return d.openWALReader()
		}
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat wal of %s: %w", d.rel, err)
	}
	idx, err := d.capture.Load(f, fi.Size())
	if err != nil {
		return fmt.Errorf("load wal of %s: %w", d.rel, err)
	}
	d.walLoaded, d.walSize = true, fi.Size()
	if d.r.opts.Capture == CapturePassthrough {
		if err := d.openWALReader(); err != nil {
			return err
		}
	}
	switch {
	case d.sums == nil || d.needSnap:
		d.needSnap = true
		d.log.Info("first sight of database: writing snapshot")
	case idx.End > wal.HeaderSize:
		d.needSnap = true
		d.log.Warn("wal holds transactions walfs did not see being written: writing snapshot")
	case d.stamp != (fileStamp{}) && d.stamp != stampOf(d.path):
		// The db file changed while it had no WAL (rollback-journal mode or
		// an outside writer). Re-read it: only a real difference costs a snapshot.
		if sum, err := d.fileChecksum(f, idx); err != nil || sum != d.sums.checksum() {
			d.needSnap = true
			d.log.Warn("database changed outside WAL mode: writing snapshot")
		}
	}
	d.stamp = fileStamp{}
	d.dirty.reset()
	if d.needSnap {
		return d.snapshot(nil, f, idx, false)
	}
	return nil
}

// commit spools one captured transaction. Caller holds d.mu.
func (d *DB) commit(txn *wal.Txn, r io.ReaderAt) error {
	if d.sums == nil || d.needSnap || d.sums.pageSize != txn.PageSize {
		return d.snapshot(txn, r, d.capture.Committed(), true)
	}
	if !writesGrowth(txn, d.sums.size()) {
		// In WAL mode SQLite sizes a database by its file; bytes appended
		// outside SQLite become pages of the next commit that it never
		// writes. Only the file has them.
		d.log.Warn("transaction grows the database over pages it did not write (the file was extended outside SQLite): writing snapshot", "txid", d.txid+1)
		return d.snapshot(txn, r, d.capture.Committed(), true)
	}
	return d.spoolTxn(txn.PageSize, txn.Commit, len(txn.Pages),
		func(i int) uint32 { return txn.Pages[i].Pgno },
		func(i int, page []byte) error {
			if _, err := r.ReadAt(page, txn.Pages[i].Offset); err != nil {
				return fmt.Errorf("read page %d from wal: %w", txn.Pages[i].Pgno, err)
			}
			return nil
		})
}

// writesGrowth reports whether txn writes every page past size, the
// database's size in pages before it, up to its commit size (the lock page
// excepted, which no one writes).
func writesGrowth(txn *wal.Txn, size uint32) bool {
	if txn.Commit <= size {
		return true
	}
	need := txn.Commit - size
	if lock := ltx.LockPgno(txn.PageSize); lock > size && lock <= txn.Commit {
		need--
	}
	seen := make(map[uint32]bool, need)
	for _, p := range txn.Pages {
		if p.Pgno > size && p.Pgno <= txn.Commit {
			seen[p.Pgno] = true
		}
	}
	return uint32(len(seen)) == need
}

// spoolTxn spools one transaction that leaves the database size pages long
// and changes n pages: page i is pgno(i), read by read(i). Pages past the end
// and the lock page are left out. Caller holds d.mu.
func (d *DB) spoolTxn(pageSize, size uint32, n int, pgno func(int) uint32, read func(int, []byte) error) error {
	txid := d.txid + 1
	pre := d.sums.checksum()
	undo := d.sums.begin()
	// Build the raw record: header, then each page once.
	payload := appendRawHeader(d.rawBuf[:0], rawTxn{
		PageSize: pageSize, Commit: size, Timestamp: time.Now().UnixMilli(), Pre: pre,
	})
	var err error
	var npages uint32
	lock := ltx.LockPgno(pageSize)
	d.sums.truncate(size)
	for i := range n {
		p := pgno(i)
		if p > size || p == lock {
			continue
		}
		payload = binary.BigEndian.AppendUint32(payload, p)
		off := len(payload)
		payload = slices.Grow(payload, int(pageSize))[:off+int(pageSize)]
		page := payload[off:]
		if err = read(i, page); err != nil {
			break
		}
		d.sums.set(p, page)
		npages++
	}
	if err == nil {
		setRawPost(payload, d.sums.checksum(), npages)
	}
	d.rawBuf = payload[:0] // keep the grown buffer for the next commit
	var ref recordRef
	if err == nil {
		ref, err = d.appendRecord(txid, payload)
	}
	if err != nil {
		d.sums.revert(undo)
		return fmt.Errorf("spool transaction %d of %s: %w", txid, d.rel, err)
	}
	d.txid = txid
	if !d.batching {
		d.up.spooled(txid)
	}
	if d.r.opts.Durability == DurabilitySync {
		if err := d.syncCommit(txid); err != nil {
			// Not acknowledged by the store: the commit fails, locally too.
			// The TXID stays burned and the next commit starts a new snapshot,
			// in case the store did take the upload after all.
			if uerr := d.unappend(ref); uerr != nil {
				err = errors.Join(err, uerr)
			}
			d.sums.revert(undo)
			d.needSnap = true
			d.up.burn(txid)
			return err
		}
	}
	d.sums.commitUndo()
	return nil
}

// appendRecord appends one transaction to the open segment, opening a new
// segment if needed. On failure the segment is cut back, so it never holds a
// torn record. Caller holds d.mu.
func (d *DB) appendRecord(txid uint64, payload []byte) (recordRef, error) {
	d.segMu.Lock()
	defer d.segMu.Unlock()
	if d.seg == nil {
		if err := os.MkdirAll(d.spool.dir, 0o700); err != nil {
			return recordRef{}, fmt.Errorf("create spool dir: %w", err)
		}
		f, err := os.OpenFile(d.spool.segmentPath(txid), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return recordRef{}, fmt.Errorf("create spool segment: %w", err)
		}
		if err := syncDir(d.spool.dir); err != nil {
			f.Close()
			os.Remove(f.Name())
			return recordRef{}, err
		}
		d.seg, d.segFirst, d.segSize = f, txid, 0
	}
	ref := recordRef{path: d.seg.Name(), off: d.segSize + int64(len(d.recBuf))}
	before := len(d.recBuf)
	d.recBuf = appendRecord(d.recBuf, txid, payload)
	if d.batching {
		d.segLast = txid
		return ref, nil
	}
	if err := d.flushRecords(); err != nil {
		d.recBuf = d.recBuf[:before] // this one is not spooled; older ones wait for the next flush
		return recordRef{}, err
	}
	d.segLast = txid
	return ref, nil
}

// beginBatch makes the records of the transactions spooled until endBatch
// collect in memory and reach the segment in one write. Caller holds d.mu.
func (d *DB) beginBatch() {
	d.segMu.Lock()
	d.batching = true
	d.segMu.Unlock()
}

// endBatch writes the collected records and tells the uploader. If the write
// fails (disk full), the records stay in memory and every later flush, sync
// or rotation tries again; until one succeeds, syncSpool fails, and with it
// the database fsync that would let a checkpoint complete, so the WAL keeps
// the transactions too. Caller holds d.mu.
func (d *DB) endBatch() error {
	d.segMu.Lock()
	d.batching = false
	had := len(d.recBuf) > 0
	err := d.flushRecords()
	d.segMu.Unlock()
	if err != nil {
		return fmt.Errorf("spool transactions of %s: %w", d.rel, err)
	}
	if had {
		d.up.spooled(d.txid)
	}
	return nil
}

// flushRecords writes the records collected in recBuf to the open segment
// with one write: a poll in passthrough mode spools many transactions, and a
// write per transaction was a quarter of walfs's CPU under 1-row commits.
// On failure the segment is cut back, so it never holds a torn record, and
// the records stay in recBuf for the next attempt. Caller holds d.segMu.
func (d *DB) flushRecords() error {
	if len(d.recBuf) == 0 {
		return nil
	}
	n, err := d.seg.WriteAt(d.recBuf, d.segSize)
	if err != nil || n < len(d.recBuf) {
		d.seg.Truncate(d.segSize)
		if err == nil {
			err = io.ErrShortWrite
		}
		return fmt.Errorf("append to spool: %w", err)
	}
	d.segSize += int64(n)
	d.segDirty = true
	d.recBuf = d.recBuf[:0]
	return nil
}

// recordRef locates a record just appended, so a failed synchronous commit
// can take it back out of the spool.
type recordRef struct {
	path string
	off  int64
}

// unappend removes the record at ref (the newest in the spool). The segment
// may have been rotated meanwhile; it is cut back either way.
func (d *DB) unappend(ref recordRef) error {
	d.segMu.Lock()
	defer d.segMu.Unlock()
	if d.seg != nil && d.seg.Name() == ref.path {
		d.segSize = ref.off
		return d.seg.Truncate(ref.off)
	}
	if ref.off == 0 {
		return os.Remove(ref.path)
	}
	return os.Truncate(ref.path, ref.off)
}

// rotate closes the open segment so the uploader can take it. Caller holds d.segMu.
func (d *DB) rotate() error {
	if d.seg == nil {
		return nil
	}
	if err := d.flushRecords(); err != nil {
		return err
	}
	f := d.seg
	d.seg = nil
	var err error
	if d.segDirty {
		err = f.Sync()
		d.segDirty = false
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close spool segment: %w", err)
	}
	return nil
}

// snapshot spools the whole database: the db file, overlaid with the
// committed frames of the current WAL generation (idx), overlaid with txn.
// asCommit says SQLite is waiting on it to acknowledge a commit (which
// --durability sync then holds until the store has it). Caller holds d.mu.
func (d *DB) snapshot(txn *wal.Txn, r io.ReaderAt, idx *wal.Index, asCommit bool) error {
	pageSize, size, err := d.shape(txn, idx)
	if err != nil {
		return err
	}
	if size == 0 {
		d.needSnap = true // nothing to snapshot yet; the first commit will
		return nil
	}
	overlay := make(map[uint32]int64)
	if idx != nil {
		for pgno, off := range idx.Pages {
			overlay[pgno] = off
		}
	}
	if txn != nil {
		for _, p := range txn.Pages {
			overlay[p.Pgno] = p.Offset
		}
	}
	dbf, err := os.Open(d.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open %s for snapshot: %w", d.rel, err)
	}
	if dbf != nil {
		defer dbf.Close()
	}
	txid := d.txid + 1
	sums := newPageSums(pageSize)
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: pageSize, Commit: size,
		MinTXID: 1, MaxTXID: ltx.TXID(txid), Timestamp: time.Now().UnixMilli(),
	}
	d.segMu.Lock()
	err = d.rotate()
	d.segMu.Unlock()
	if err != nil {
		return err
	}
	path := d.spool.snapshotPath(txid)
	err = writeLTXFile(path, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
		buf := getPage(pageSize)
		defer putPage(buf)
		lock := ltx.LockPgno(pageSize)
		for pgno := uint32(1); pgno <= size; pgno++ {
			if pgno == lock {
				continue
			}
			if err := readPage(buf, pgno, overlay, r, dbf); err != nil {
				return 0, err
			}
			if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, buf); err != nil {
				return 0, fmt.Errorf("encode page %d: %w", pgno, err)
			}
			sums.set(pgno, buf)
		}
		sums.truncate(size)
		return sums.checksum(), nil
	})
	if err != nil {
		return fmt.Errorf("spool snapshot %d of %s: %w", txid, d.rel, err)
	}
	d.txid = txid
	if !d.batching {
		d.up.spooled(txid)
	}
	if asCommit && d.r.opts.Durability == DurabilitySync {
		if err := d.syncCommit(txid); err != nil {
			os.Remove(path) // the commit fails; the TXID stays burned
			d.up.burn(txid)
			return err
		}
	}
	d.sums, d.needSnap = sums, false
	d.log.Info("snapshot spooled", "txid", txid, "pages", size)
	return nil
}

// fileChecksum computes the checksum of the database as SQLite sees it now.
func (d *DB) fileChecksum(r io.ReaderAt, idx *wal.Index) (ltx.Checksum, error) {
	sums, err := d.computeSums(r, idx)
	if err != nil || sums == nil {
		return 0, err
	}
	return sums.checksum(), nil
}

// computeSums reads every page of the database as SQLite sees it (db file
// overlaid with the committed WAL frames of idx). Nil for an empty database.
func (d *DB) computeSums(r io.ReaderAt, idx *wal.Index) (*pageSums, error) {
	pageSize, size, err := d.shape(nil, idx)
	if err != nil || size == 0 {
		return nil, err
	}
	dbf, err := os.Open(d.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if dbf != nil {
		defer dbf.Close()
	}
	var overlay map[uint32]int64
	if idx != nil {
		overlay = idx.Pages
	}
	sums := newPageSums(pageSize)
	buf := getPage(pageSize)
	defer putPage(buf)
	lock := ltx.LockPgno(pageSize)
	for pgno := uint32(1); pgno <= size; pgno++ {
		if pgno == lock {
			continue
		}
		if err := readPage(buf, pgno, overlay, r, dbf); err != nil {
			return nil, err
		}
		sums.set(pgno, buf)
	}
	sums.truncate(size)
	return sums, nil
}

// shape returns the page size and size in pages of the database.
func (d *DB) shape(txn *wal.Txn, idx *wal.Index) (pageSize, size uint32, err error) {
	var hdr [100]byte
	n := 0
	if f, err := os.Open(d.path); err == nil {
		n, _ = io.ReadFull(f, hdr[:])
		fi, _ := f.Stat()
		f.Close()
		if n == len(hdr) {
			pageSize = uint32(binary.BigEndian.Uint16(hdr[16:18]))
			if pageSize == 1 {
				pageSize = 65536
			}
			if fi != nil && pageSize > 0 {
				size = uint32(fi.Size() / int64(pageSize))
			}
			// Trust the header's page count when it is marked valid.
			if binary.BigEndian.Uint32(hdr[92:96]) == binary.BigEndian.Uint32(hdr[24:28]) {
				if c := binary.BigEndian.Uint32(hdr[28:32]); c > 0 {
					size = c
				}
			}
		}
	}
	if idx != nil && idx.PageSize != 0 {
		pageSize = idx.PageSize
		if idx.DBSize > 0 {
			size = idx.DBSize
		}
	}
	if txn != nil {
		pageSize, size = txn.PageSize, txn.Commit
	}
	if size > 0 && !ltx.IsValidPageSize(pageSize) {
		return 0, 0, fmt.Errorf("database %s: invalid page size %d (is it a SQLite database?)", d.rel, pageSize)
	}
	return pageSize, size, nil
}

// readPage fills buf with page pgno: from the WAL when overlaid, else from
// the db file (zeros past its end).
func readPage(buf []byte, pgno uint32, overlay map[uint32]int64, wr io.ReaderAt, dbf *os.File) error {
	if off, ok := overlay[pgno]; ok && wr != nil {
		if _, err := wr.ReadAt(buf, off); err != nil {
			return fmt.Errorf("read page %d from wal: %w", pgno, err)
		}
		return nil
	}
	clear(buf)
	if dbf == nil {
		return nil
	}
	_, err := dbf.ReadAt(buf, int64(pgno-1)*int64(len(buf)))
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read page %d from db: %w", pgno, err)
	}
	return nil
}

var pagePools sync.Map // page size -> *sync.Pool

func getPage(size uint32) []byte {
	p, _ := pagePools.LoadOrStore(size, &sync.Pool{New: func() any { return make([]byte, size) }})
	return p.(*sync.Pool).Get().([]byte)
}

func putPage(b []byte) {
	if p, ok := pagePools.Load(uint32(len(b))); ok {
		p.(*sync.Pool).Put(b) //nolint:staticcheck // slices are fine here
	}
}

// syncSpool makes every spooled transaction durable on disk.
func (d *DB) syncSpool() error {
	d.segMu.Lock()
	defer d.segMu.Unlock()
	if d.seg == nil {
		return nil
	}
	if err := d.flushRecords(); err != nil {
		return err
	}
	if !d.segDirty {
		return nil
	}
	if err := d.seg.Sync(); err != nil {
		return fmt.Errorf("fsync spool of %s: %w", d.rel, err)
	}
	d.segDirty = false
	return nil
}

// waitCtx is a helper for loops that sleep.
func waitCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
