package restore

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// pageFile is what LTX pages are applied to: the temporary database file.
type pageFile interface {
	io.WriterAt
	Truncate(size int64) error
}

// expect is what the caller knows about an LTX file before decoding it.
// Zero fields are not checked.
type expect struct {
	pageSize uint32
	minTXID  uint64
	maxTXID  uint64
}

// applied is what applyLTX learned from one file.
type applied struct {
	header  ltx.Header
	trailer ltx.Trailer
	pages   int
}

// applyLTX decodes one LTX file from r, writes each page into db at
// (pgno-1)*pageSize and truncates db to the file's commit size. Memory use is
// one page plus the decoder's buffers, whatever the file size.
//
// It checks the header against want, that pages are within the commit and
// never the lock page, that a snapshot holds every page, and (Decoder.Close)
// the page index, the trailer and the file CRC. Pages are written before the
// CRC is known, so on error db holds a mix and must be discarded.
func applyLTX(r io.Reader, db pageFile, want expect) (applied, error) {
	dec := ltx.NewDecoder(&frameGuard{r: bufio.NewReaderSize(r, 64<<10)})
	dec.SetRetainPageIndex(false) // the index of a large snapshot would be database-sized
	if err := dec.DecodeHeader(); err != nil {
		return applied{}, fmt.Errorf("%w: decode header: %w", ErrCorrupt, err)
	}
	hdr := dec.Header()
	if want.pageSize != 0 && hdr.PageSize != want.pageSize {
		return applied{}, fmt.Errorf("%w: page size %d, expected %d like the files before it", ErrCorrupt, hdr.PageSize, want.pageSize)
	}
	if want.minTXID != 0 && (uint64(hdr.MinTXID) != want.minTXID || uint64(hdr.MaxTXID) != want.maxTXID) {
		return applied{}, fmt.Errorf("%w: header TXID range %d..%d does not match the key", ErrCorrupt, hdr.MinTXID, hdr.MaxTXID)
	}

	pageSize := int64(hdr.PageSize)
	lockPgno := ltx.LockPgno(hdr.PageSize)
	data := make([]byte, hdr.PageSize)
	run := newPageRun(db, pageSize)
	// Never leave a write running into a file the caller may discard. On
	// success run.close has waited already and reported the error.
	defer run.wait() //walfs:ignore-error joins the write on early returns, which fail already
	var ph ltx.PageHeader
	n := 0
	for {
		err := dec.DecodePage(&ph, data)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return applied{}, fmt.Errorf("%w: decode page %d: %w", ErrCorrupt, n+1, err)
		}
		switch {
		case ph.Pgno > hdr.Commit:
			return applied{}, fmt.Errorf("%w: page %d is past the commit size %d", ErrCorrupt, ph.Pgno, hdr.Commit)
		case ph.Pgno == lockPgno:
			return applied{}, fmt.Errorf("%w: file holds the lock page %d", ErrCorrupt, ph.Pgno)
		}
		if err := run.add(ph.Pgno, int64(ph.Pgno-1)*pageSize, data); err != nil {
			return applied{}, err
		}
		n++
	}
	if err := run.close(); err != nil {
		return applied{}, err
	}
	if err := dec.Close(); err != nil {
		return applied{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if hdr.IsSnapshot() {
		if want := snapshotPages(hdr.Commit, lockPgno); uint32(n) != want {
			return applied{}, fmt.Errorf("%w: snapshot holds %d pages, its commit size needs %d", ErrCorrupt, n, want)
		}
	}
	if err := db.Truncate(int64(hdr.Commit) * pageSize); err != nil {
		return applied{}, fmt.Errorf("truncate to %d pages: %w", hdr.Commit, err)
	}
	return applied{header: hdr, trailer: dec.Trailer(), pages: n}, nil
}

// maxRunBytes bounds the pages pageRun holds before writing them.
const maxRunBytes = 1 << 20

// pageRun coalesces pages with consecutive numbers into one write, and
// writes in the background while the next run is decoded. A snapshot is one
// long run; writing its pages one by one would cost a system call per page
// (a quarter of a million for 1 GiB of 4 KiB pages), and copying 1 GiB into
// the page cache costs about as much CPU as decoding it.
type pageRun struct {
	db       pageFile
	buf      []byte // pages not yet written, consecutive
	spare    []byte // the other buffer, being written while buf fills
	off      int64  // file offset of buf
	first    uint32 // page number at buf[0], for errors
	inFlight chan error
}

func newPageRun(db pageFile, pageSize int64) *pageRun {
	n := max(pageSize, maxRunBytes/pageSize*pageSize)
	return &pageRun{db: db, buf: make([]byte, 0, n), spare: make([]byte, 0, n)}
}

// add queues the page pgno for offset off, writing the queued run first if
// the page does not extend it or it is full.
func (w *pageRun) add(pgno uint32, off int64, data []byte) error {
	if len(w.buf) > 0 && (off != w.off+int64(len(w.buf)) || len(w.buf)+len(data) > cap(w.buf)) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		w.off, w.first = off, pgno
	}
	w.buf = append(w.buf, data...)
	return nil
}

// flush starts writing the queued run once the previous write is done.
func (w *pageRun) flush() error {
	if err := w.wait(); err != nil || len(w.buf) == 0 {
		return err
	}
	buf, off, first := w.buf, w.off, w.first
	w.buf, w.spare = w.spare[:0], buf
	w.inFlight = make(chan error, 1)
	go func() {
		_, err := w.db.WriteAt(buf, off)
		if err != nil {
			err = fmt.Errorf("write pages from %d: %w", first, err)
		}
		w.inFlight <- err
	}()
	return nil
}

// wait waits for the write in flight, if any, and returns its error.
func (w *pageRun) wait() error {
	if w.inFlight == nil {
		return nil
	}
	err := <-w.inFlight
	w.inFlight = nil
	return err
}

// close writes what is queued and waits for it.
func (w *pageRun) close() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.wait()
}

// snapshotPages is the number of pages a snapshot of commit pages holds:
// all of them but the lock page.
func snapshotPages(commit, lockPgno uint32) uint32 {
	if commit >= lockPgno {
		return commit - 1
	}
	return commit
}
