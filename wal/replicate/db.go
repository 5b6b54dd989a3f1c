package replicate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/wal"
)

// DB is the capture side of one replicated database. It turns what SQLite
// writes (WAL frames, rollback-journal commits, files changed outside
// SQLite's protocol) into transactions with TXIDs, keeps the checksum of
// every page, and hands each transaction to its spool writer, telling its
// uploader what reached the spool. It owns the capture state below mu.
//
// mu guards that state, and DB's methods take it themselves (those that
// say "Caller holds d.mu" are called from them). Callers: FUSE requests
// through the Replicator, the inotify watcher goroutine (passthrough mode),
// Flush, Compare, the reconciler goroutine, and a repair (snapshotNow).
// Under durability sync a commit holds mu until the store has it, so only
// this database's requests wait (doc.go has the lock order).
type DB struct {
	rel   string // path relative to the data dir
	path  string // backing file
	log   *slog.Logger
	env   dbEnv
	spool *spoolWriter // where transactions go
	up    *uploader    // what ships them; told what reached the spool

	mu              sync.Mutex
	capture         *wal.Capture
	walLoaded       bool
	walSize         int64
	walf            *os.File  // walfs's own read handle on the WAL (passthrough mode)
	shmf            *os.File  // and on its wal-index (-shm); nil until it exists
	sums            *pageSums // nil until the database has been snapshotted
	txid            uint64    // last TXID assigned
	needSnap        bool      // next commit (or WAL open) writes a snapshot
	stamp           fileStamp // db file state when its WAL went away
	dirty           dirtySet  // written since the last rollback-journal commit
	warnedNoJournal bool
	kernelWrites    bool // a handle the kernel serves was opened since the last rollback-journal commit

	// What the capture took on the wal-index's word, copied after each
	// poll for Status, which does not take mu.
	indexFrames, indexRefused atomic.Uint64
	tailRecheck               *time.Timer   // a full poll after a watcher's poll left an open tail unread; under mu
	checked, checkSnaps       atomic.Uint64 // outside writes reconciled, and of those the ones that needed a snapshot (reconcile.go)
}

// dbEnv is what a DB is given at construction besides its spool writer and
// uploader: the settings it needs and the few Replicator services it uses.
type dbEnv struct {
	capture     CaptureMode
	durability  Durability
	syncTimeout time.Duration         // how long a sync commit waits for the store
	life        context.Context       // ends when the Replicator closes: no sync commit waits longer
	watch       *watcher              // passthrough mode: which WALs changed; nil otherwise
	untracked   func(rel string) bool // Replicator.untracked: a handle the kernel serves hides writes
	removed     func(rel string)      // Options.Removed; nil when unset
}

// newDB returns the DB for rel, backed by path; resume positions it.
func newDB(rel, path string, log *slog.Logger, env dbEnv, spool *spoolWriter, up *uploader) *DB {
	d := &DB{rel: rel, path: path, log: log, env: env, spool: spool, up: up}
	d.capture = wal.NewCapture(commitSink{d})
	// A Poll spools what committed since the last one as one transaction
	// (one TXID): a stream of 1-row commits rewrites the same few pages, and
	// reading and checksumming each page once per commit was most of
	// walfs's CPU. The uploader merges the commits of one upload the same
	// way, so the replica offers the same restore points.
	d.capture.MergePolls = env.capture == CapturePassthrough
	return d
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
	return stampOfInfo(fi)
}

// stampOfInfo is stampOf for a file already stat-ed.
func stampOfInfo(fi os.FileInfo) fileStamp { return fileStamp{size: fi.Size(), mtime: fi.ModTime()} }

// commitSink adapts DB to wal.Sink; DB.mu is held by the caller of Wrote.
type commitSink struct{ d *DB }

func (s commitSink) Commit(txn *wal.Txn, r io.ReaderAt) error { return s.d.commit(txn, r) }

// walOpened loads the WAL the first time it is opened and decides whether
// the replica can continue from what it holds. Caller holds d.mu.
func (d *DB) walOpened(f *os.File) error {
	if d.walLoaded {
		// Loaded at start (resume.go); passthrough capture also needs its
		// read handle, or it would never see a commit.
		if d.env.capture == CapturePassthrough {
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
	if d.env.capture == CapturePassthrough {
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
	// Read the pages in file order: a big transaction's pages then stream
	// through one read-ahead buffer instead of costing a read each (in page
	// order they are scattered over the WAL, and a passthrough poll's
	// read-ahead refilled 256 KiB for every page). The Txn is ours.
	slices.SortFunc(txn.Pages, func(a, b wal.PageRef) int { return cmp.Compare(a.Offset, b.Offset) })
	if f, ok := r.(*os.File); ok && len(txn.Pages) > 1 {
		ra := newReadAhead(f, txn.End)
		defer ra.release()
		r = ra
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
	h := rawTxn{PageSize: pageSize, Commit: size, Timestamp: time.Now().UnixMilli(), Pre: pre}
	ref, written, err := d.spool.appendTxn(txid, h, func(rec *txnRecord) (ltx.Checksum, error) {
		// Each page once: read into the spool's buffer, checksummed there.
		lock := ltx.LockPgno(pageSize)
		d.sums.truncate(size)
		for i := range n {
			p := pgno(i)
			if p > size || p == lock {
				continue
			}
			page, err := rec.page(p)
			if err != nil {
				return 0, err
			}
			if err := read(i, page); err != nil {
				return 0, err
			}
			d.sums.set(p, page)
		}
		return d.sums.checksum(), nil
	})
	if err != nil {
		d.sums.revert(undo)
		return fmt.Errorf("spool transaction %d of %s: %w", txid, d.rel, err)
	}
	d.txid = txid
	if written {
		d.up.spooled(txid)
	}
	if d.env.durability == DurabilitySync {
		if err := d.syncCommit(txid); err != nil {
			// Not acknowledged by the store: the commit fails, locally too.
			// The TXID stays burned and the next commit starts a new snapshot,
			// in case the store did take the upload after all.
			if uerr := d.spool.unappend(ref); uerr != nil {
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
		defer dbf.Close() // read only
	}
	txid := d.txid + 1
	sums := newPageSums(pageSize)
	hdr := ltx.Header{
		Version: ltx.Version, PageSize: pageSize, Commit: size,
		MinTXID: 1, MaxTXID: ltx.TXID(txid), Timestamp: time.Now().UnixMilli(),
	}
	path, written, err := d.spool.writeSnapshot(txid, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
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
		return err
	}
	d.txid = txid
	if written {
		d.up.spooled(txid)
	}
	if asCommit && d.env.durability == DurabilitySync {
		if err := d.syncCommit(txid); err != nil {
			// The commit fails; the TXID stays burned.
			err = errors.Join(err, d.spool.unspoolSnapshot(path))
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
		defer dbf.Close() // read only
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
	f, err := openRead(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return d.shapeOf(dbHeader{}, txn, idx)
	} else if err != nil {
		return 0, 0, fmt.Errorf("database %s: %w", d.rel, err)
	}
	defer f.Close() // read only
	h, err := readDBHeader(f)
	if err != nil {
		return 0, 0, fmt.Errorf("database %s: %w", d.rel, err)
	}
	return d.shapeOf(h, txn, idx)
}

// shapeOf is shape with the database file's header h already read.
func (d *DB) shapeOf(h dbHeader, txn *wal.Txn, idx *wal.Index) (pageSize, size uint32, err error) {
	if hdr, ok := wal.ParseDBHeader(h.b[:h.n]); ok && h.n == len(h.b) {
		pageSize, size = hdr.PageSize, uint32(h.size/int64(hdr.PageSize))
		if hdr.PageCount > 0 { // the in-header size, when SQLite would trust it
			size = hdr.PageCount
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

// dbHeader is the first 100 bytes of a database file (n of them: fewer in
// a shorter file, none when there is no file) and what fstat said of it.
type dbHeader struct {
	b     [100]byte
	n     int
	size  int64
	stamp fileStamp
}

// readDBHeader reads the header of the database file open at f.
func readDBHeader(f *os.File) (dbHeader, error) {
	var h dbHeader
	fi, err := f.Stat()
	if err != nil {
		return dbHeader{}, err
	}
	h.size, h.stamp = fi.Size(), stampOfInfo(fi)
	h.n, err = f.ReadAt(h.b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return dbHeader{}, fmt.Errorf("read header: %w", err)
	}
	return h, nil
}

// openRead opens path read-only, as os.Open does, without offering the
// file to the runtime's poller: for a regular file os.Open's attempt costs
// five more system calls (fcntl twice, epoll_ctl, fcntl twice), and a
// rollback-journal commit opens two files.
func openRead(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
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

// syncCommit uploads everything spooled up to txid and waits for the store to
// acknowledge it (durability sync). It runs in the committing FUSE request,
// so SQLite's commit does not return before the store has the transaction.
func (d *DB) syncCommit(txid uint64) error {
	ctx, cancel := context.WithTimeout(d.env.life, d.env.syncTimeout)
	defer cancel()
	if err := d.up.uploadThrough(ctx, txid); err != nil {
		return fmt.Errorf("store did not acknowledge transaction %d within the sync timeout %s, so the commit fails (durability sync): %w", txid, d.env.syncTimeout, err)
	}
	return nil
}

// syncSpool makes every spooled transaction durable on disk.
func (d *DB) syncSpool() error { return d.spool.sync() }

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
