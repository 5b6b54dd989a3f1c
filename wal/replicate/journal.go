package replicate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/walfs/walfs/wal"
)

// JournalEnd implements fusefs.Capturer: db's rollback journal is about to
// stop being valid (deleted, truncated or its header zeroed), which is the
// moment SQLite commits in rollback-journal mode. The database file already
// holds the transaction; the journal names the pages it changed. The commit
// is spooled (not synced: see journalCommitAt) before the journal goes, so
// an error here keeps the journal hot and SQLite rolls the transaction back.
func (r *Replicator) JournalEnd(db string) error {
	d, err := r.get(db)
	if err != nil {
		return err
	}
	return d.journalEnd()
}

// journalEnd is JournalEnd for d.
func (d *DB) journalEnd() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.journalCommit(); err != nil {
		return fmt.Errorf("capture %s: %w", d.rel, err)
	}
	return nil
}

// JournalZeroed implements fusefs.Capturer: a journal the kernel wrote was
// found with its header zeroed, so SQLite has committed the transaction it
// described. header is that journal's first header as an earlier sync
// found it (nil if none did).
func (r *Replicator) JournalZeroed(db string, header []byte) error {
	d, err := r.get(db)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log.Debug("commit found at the sync of a zeroed journal the kernel wrote", "header_kept", header != nil)
	if err := d.journalCommitAt(header, true); err != nil {
		return fmt.Errorf("capture %s: %w", d.rel, err)
	}
	return nil
}

// journalCommit spools the transaction the live journal describes, if any.
// Caller holds d.mu.
func (d *DB) journalCommit() error { return d.journalCommitAt(nil, false) }

// journalCommitAt is journalCommit. With zeroed, SQLite has already zeroed
// the journal's header: header (if not nil) stands in for it, and without
// it every page is compared with the replica. Caller holds d.mu.
func (d *DB) journalCommitAt(header []byte, zeroed bool) (err error) {
	jf, err := openRead(d.path + "-journal")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer jf.Close() // read only
	fi, err := jf.Stat()
	if err != nil {
		return fmt.Errorf("stat journal: %w", err)
	}
	var jr io.ReaderAt = jf
	if zeroed && header != nil {
		jr = headerOverlay{jf, header}
	}
	j, err := wal.ReadJournal(jr, fi.Size())
	if err != nil || (j == nil && !zeroed) {
		return err // nil: finalized already, or no page was ever written
	}
	if d.walLoaded {
		// A WAL is open too: SQLite is switching modes. The next WAL
		// commit (or open) re-reads everything.
		d.needSnap = true
		d.log.Warn("rollback journal committed while a wal is open: the next commit writes a snapshot")
		return nil
	}
	// One handle on the database for the header, the stamp and the pages.
	dbf, err := openRead(d.path)
	if errors.Is(err, os.ErrNotExist) {
		d.stamp = fileStamp{}
		return nil
	} else if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer dbf.Close() // read only
	h, err := readDBHeader(dbf)
	if err != nil {
		return fmt.Errorf("database %s: %w", d.rel, err)
	}
	// SQLite holds the database's write lock until the journal is gone:
	// the file stays as fstat found it.
	defer func() { d.stamp = h.stamp }()
	pageSize, size, err := d.shapeOf(h, nil, nil)
	if err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	// Writes through handles the kernel serves are not seen: the journal
	// and the file tell the changed pages then.
	fromJournal := d.kernelWrites || d.env.untracked(d.rel)
	defer func() {
		if err == nil { // else SQLite rolls back, still unseen
			d.kernelWrites = d.env.untracked(d.rel)
		}
	}()
	if d.sums == nil || d.needSnap || d.sums.pageSize != pageSize {
		if d.sums == nil {
			d.log.Info("first sight of database (rollback journal): writing snapshot")
		}
		d.needSnap = true
		if err := d.snapshot(nil, nil, nil, true); err != nil {
			return err
		}
		d.dirty.reset()
		return nil
	}
	var pages []uint32
	switch {
	case j == nil:
		// Zeroed, and no header kept: compare every page.
		pages, err = d.differing(dbf, allPages(size))
		if err != nil {
			return err
		}
	case fromJournal:
		pages, err = d.journalPages(j, jr, dbf, pageSize, size)
		if err != nil {
			return err
		}
	default:
		// The pages written since the last commit, plus, to be safe, those
		// the journal names and those past the original end.
		pages = d.dirty.pages(pageSize, size)
		pages = append(pages, j.Pages...)
		for p := j.OrigSize + 1; p <= size; p++ {
			pages = append(pages, p)
		}
		slices.Sort(pages)
		pages = slices.Compact(pages)
	}
	if same, err := d.unchanged(size, pages, dbf); err != nil || same {
		// A rollback (ROLLBACK, or a hot journal played back) put back
		// what the replica already holds: nothing to spool. This also lets
		// SQLite roll back when the disk is full.
		if same {
			d.dirty.reset()
		}
		return err
	}
	err = d.spoolTxn(pageSize, size, len(pages),
		func(i int) uint32 { return pages[i] },
		func(i int, page []byte) error {
			return readPage(page, pages[i], nil, nil, dbf)
		})
	if err != nil {
		return err
	}
	d.dirty.reset()
	// The spool is not synced here. SQLite synced the database, which holds
	// the transaction, before it ended the journal; should the record not
	// reach the disk (a power cut), the next start finds the database past
	// the spool's last record and spools a snapshot of it (resume). Only the
	// history since the spool's last sync is then one step. An fsync here,
	// of a second file, took a third of a 1-row commit's time.
	return nil
}

// headerOverlay reads a journal whose first header SQLite has zeroed as it
// was before: hdr in place of the zeroes.
type headerOverlay struct {
	r   io.ReaderAt
	hdr []byte
}

func (o headerOverlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.r.ReadAt(p, off)
	if off < int64(len(o.hdr)) {
		copy(p[:n], o.hdr[off:])
	}
	return n, err
}

// journalPages returns the pages the committed transaction j describes
// changed, read from the journal and the database file (wal.RollbackChanges)
// and checked against what the replica holds where the rule is unsure.
// Caller holds d.mu.
func (d *DB) journalPages(j *wal.Journal, jf io.ReaderAt, dbf *os.File, pageSize, size uint32) ([]uint32, error) {
	ch, err := wal.RollbackChanges(j, jf, dbf, pageSize, size)
	if err != nil {
		return nil, fmt.Errorf("read rollback transaction: %w", err)
	}
	differing := func(pages []uint32) ([]uint32, error) { return d.differing(dbf, pages) }
	all := func() []uint32 { return allPages(size) }
	switch {
	case ch.All:
		// The rule cannot tell (VACUUM or autovacuum cut the end of the
		// original free list off unjournaled): compare every page.
		return differing(all())
	case !d.sums.holds(1, ch.Page1):
		// The file was not as the last captured commit left it when this
		// transaction began: commits in journal_mode=MEMORY or OFF, which
		// write no journal. They ship now, with this commit.
		if !d.warnedNoJournal {
			d.warnedNoJournal = true
			d.log.Warn("database changed since the last commit walfs saw (commits in journal_mode=MEMORY or OFF, or with synchronous=OFF in journal_mode=PERSIST or exclusive locking): they reach the replica with this commit")
		}
		return differing(all())
	}
	// A free-list leaf reused and freed again in the transaction changed
	// only if its bytes differ from the replica's.
	reused, err := differing(ch.Unsure)
	if err != nil {
		return nil, err
	}
	pages := append(ch.Pages, reused...)
	slices.Sort(pages)
	return pages, nil
}

// noteWrite records a write to the database file of a rollback-journal
// transaction. Caller holds d.mu.
func (d *DB) noteWrite(off int64, n int) {
	if d.sums == nil {
		return // the next commit snapshots anyway
	}
	if d.dirty.empty() && !d.warnedNoJournal {
		// First write of a transaction: it should be protected by a journal.
		if _, err := os.Stat(d.path + "-journal"); errors.Is(err, os.ErrNotExist) {
			d.warnedNoJournal = true
			d.log.Warn("database written without a journal file (journal_mode=MEMORY or OFF?): walfs cannot see its commits; they reach the replica with its next commit in WAL, DELETE, TRUNCATE or PERSIST mode")
		}
	}
	d.dirty.add(off, n)
}

// journalLive reports whether db has a rollback journal with a live
// transaction: its database file may then be half written, so a snapshot
// must wait for the commit (or the rollback) to finish.
func (d *DB) journalLive() bool {
	f, err := os.Open(d.path + "-journal")
	if err != nil {
		return false
	}
	defer f.Close() // read only
	var magic [8]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		return false
	}
	return wal.IsJournalMagic(magic[:])
}

// unchanged reports whether the database, size pages long with pages
// possibly changed, still reads as the replica's latest state.
func (d *DB) unchanged(size uint32, pages []uint32, dbf *os.File) (bool, error) {
	if size != d.sums.size() {
		return false, nil
	}
	buf := getPage(d.sums.pageSize)
	defer putPage(buf)
	for _, p := range pages {
		if p > size {
			continue
		}
		if err := readPage(buf, p, nil, nil, dbf); err != nil {
			return false, err
		}
		if !d.sums.holds(p, buf) {
			return false, nil
		}
	}
	return true, nil
}

// kernelOpened records that a handle the kernel serves was opened on the
// database: its writes are not seen, so the next rollback-journal commit
// takes its pages from the journal and the file (wal.RollbackChanges).
func (d *DB) kernelOpened() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kernelWrites = true
}

// differing returns those of pages whose content in dbf is not the
// replica's. Caller holds d.mu.
func (d *DB) differing(dbf *os.File, pages []uint32) ([]uint32, error) {
	buf := getPage(d.sums.pageSize)
	defer putPage(buf)
	var out []uint32
	for _, p := range pages {
		if err := readPage(buf, p, nil, nil, dbf); err != nil {
			return nil, err
		}
		if !d.sums.holds(p, buf) {
			out = append(out, p)
		}
	}
	return out, nil
}

// allPages returns 1..size.
func allPages(size uint32) []uint32 {
	pages := make([]uint32, size)
	for i := range pages {
		pages[i] = uint32(i) + 1
	}
	return pages
}
