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
		if _, err := db.WriteAt(data, int64(ph.Pgno-1)*pageSize); err != nil {
			return applied{}, fmt.Errorf("write page %d: %w", ph.Pgno, err)
		}
		n++
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

// snapshotPages is the number of pages a snapshot of commit pages holds:
// all of them but the lock page.
func snapshotPages(commit, lockPgno uint32) uint32 {
	if commit >= lockPgno {
		return commit - 1
	}
	return commit
}

// dbChecksum returns the LTX database checksum of the first nPages pages
// read from r: ltx.ChecksumFlag OR the XOR of ltx.ChecksumPage over every
// page but the lock page (docs/format.md).
func dbChecksum(r io.Reader, pageSize, nPages uint32) (ltx.Checksum, error) {
	return checksumPages(r, pageSize, nPages, ltx.LockPgno(pageSize))
}

// checksumPages is dbChecksum with the lock page given, so tests can place
// it inside a small database.
func checksumPages(r io.Reader, pageSize, nPages, lockPgno uint32) (ltx.Checksum, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	h := ltx.NewHasher()
	data := make([]byte, pageSize)
	sum := ltx.ChecksumFlag
	for pgno := uint32(1); pgno <= nPages; pgno++ {
		if _, err := io.ReadFull(br, data); err != nil {
			return 0, fmt.Errorf("read page %d: %w", pgno, err)
		}
		if pgno != lockPgno {
			sum = ltx.ChecksumFlag | (sum ^ ltx.ChecksumPageWithHasher(h, pgno, data))
		}
	}
	return sum, nil
}
