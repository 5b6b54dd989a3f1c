package replicate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/superfly/ltx"
)

// mergeLTX merges contiguous LTX files (in TXID order) into one, latest page
// wins, writing it to w. Unlike ltx.Compactor it keeps one reader open at a
// time, so thousands of single-transaction records merge in constant memory
// per input: page images are staged in a temp file in tmpDir and only an
// index of page number → offset stays in memory.
func mergeLTX(inputs []func() (io.Reader, error), w io.Writer, tmpDir string) (_ ltx.Header, _ ltx.Trailer, err error) {
	stage, err := os.CreateTemp(tmpDir, "merge-*.pages")
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("create merge file: %w", err)
	}
	defer func() { err = errors.Join(err, removeScratch(stage)) }()
	bw := bufio.NewWriterSize(stage, 256<<10)

	var first, last ltx.Header
	var lastTrailer ltx.Trailer
	index := make(map[uint32]int64)
	var off int64
	var buf []byte
	for i, open := range inputs {
		r, err := open()
		if err != nil {
			return ltx.Header{}, ltx.Trailer{}, err
		}
		dec := ltx.NewDecoder(r)
		if err := dec.DecodeHeader(); err != nil {
			return ltx.Header{}, ltx.Trailer{}, damaged(fmt.Errorf("decode input %d: %w", i, err))
		}
		hdr := dec.Header()
		if i == 0 {
			first = hdr
		} else {
			if hdr.PageSize != first.PageSize {
				return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("merge: page size changed from %d to %d at txid %d", first.PageSize, hdr.PageSize, hdr.MinTXID)
			}
			if hdr.MinTXID != last.MaxTXID+1 {
				return ltx.Header{}, ltx.Trailer{}, inconsistent(fmt.Errorf("merge: txid gap between %d and %d", last.MaxTXID, hdr.MinTXID))
			}
		}
		if len(buf) != int(hdr.PageSize) {
			buf = make([]byte, hdr.PageSize)
		}
		for {
			var ph ltx.PageHeader
			if err := dec.DecodePage(&ph, buf); err == io.EOF {
				break
			} else if err != nil {
				return ltx.Header{}, ltx.Trailer{}, damaged(fmt.Errorf("decode input %d: %w", i, err))
			}
			if _, err := bw.Write(buf); err != nil {
				return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("stage page: %w", err)
			}
			index[ph.Pgno] = off
			off += int64(len(buf))
		}
		if err := dec.Close(); err != nil {
			return ltx.Header{}, ltx.Trailer{}, damaged(fmt.Errorf("verify input %d: %w", i, err))
		}
		last, lastTrailer = hdr, dec.Trailer()
	}
	if err := bw.Flush(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("stage page: %w", err)
	}
	out := ltx.Header{
		Version: ltx.Version, Flags: first.Flags, PageSize: first.PageSize, Commit: last.Commit,
		MinTXID: first.MinTXID, MaxTXID: last.MaxTXID, Timestamp: last.Timestamp,
		PreApplyChecksum: first.PreApplyChecksum,
	}
	var trailer ltx.Trailer
	if err := encodeStaged(w, out, stage, index, lastTrailer.PostApplyChecksum, &trailer); err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	return out, lastTrailer, nil
}

// mergeRecords merges contiguous spool records (raw transactions, in TXID
// order) into one LTX file written to w, latest page wins. Page images are
// staged in a temp file, so memory holds only the page index.
//
// With tmpDir empty the pages are staged in memory instead (small batches,
// and the way out when the disk is full).
func mergeRecords(recs []spoolRecord, w io.Writer, tmpDir string) (_ ltx.Header, _ ltx.Trailer, err error) {
	var stage interface {
		io.ReaderAt
	}
	var bw interface {
		io.Writer
		Flush() error
	}
	var mem *memStage
	if tmpDir == "" {
		mem = &memStage{}
		stage, bw = mem, mem
	} else {
		f, cerr := os.CreateTemp(tmpDir, "merge-*.pages")
		if cerr != nil {
			return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("create merge file: %w", cerr)
		}
		defer func() { err = errors.Join(err, removeScratch(f)) }()
		stage, bw = f, bufio.NewWriterSize(f, 256<<10)
	}
	index := make(map[uint32]int64)
	var off int64
	var first, last rawTxn
	for i, rec := range recs {
		h, err := readRawHeader(rec.f, rec.record)
		if err != nil {
			return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("record %d: %w", rec.TXID, err)
		}
		if i == 0 {
			first = h
		} else if h.PageSize != first.PageSize {
			return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("merge: page size changed from %d to %d at txid %d", first.PageSize, h.PageSize, rec.TXID)
		} else if rec.TXID != recs[i-1].TXID+1 {
			return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("merge: txid gap between %d and %d", recs[i-1].TXID, rec.TXID)
		}
		err = eachRawPage(rec.f, rec.record, h, func(pgno uint32, data []byte) error {
			if at, ok := index[pgno]; ok && mem != nil {
				// A newer image of a staged page (every image has the page
				// size): in place, so memory holds each page once.
				copy(mem.b[at:at+int64(len(data))], data)
				return nil
			}
			if _, err := bw.Write(data); err != nil {
				return fmt.Errorf("stage page: %w", err)
			}
			index[pgno] = off
			off += int64(len(data))
			return nil
		})
		if err != nil {
			return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("record %d: %w", rec.TXID, err)
		}
		last = h
	}
	if err := bw.Flush(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("stage page: %w", err)
	}
	out := ltx.Header{
		Version: ltx.Version, PageSize: first.PageSize, Commit: last.Commit,
		MinTXID: ltx.TXID(recs[0].TXID), MaxTXID: ltx.TXID(recs[len(recs)-1].TXID), Timestamp: last.Timestamp,
		PreApplyChecksum: first.Pre,
	}
	var trailer ltx.Trailer
	if err := encodeStaged(w, out, stage, index, last.Post, &trailer); err != nil {
		return ltx.Header{}, ltx.Trailer{}, err
	}
	return out, trailer, nil
}

// spoolRecord is a record and the segment file it lives in.
type spoolRecord struct {
	f io.ReaderAt
	record
}

// memStage is an in-memory page staging area for mergeRecords.
type memStage struct{ b []byte }

func (m *memStage) Write(p []byte) (int, error) { m.b = append(m.b, p...); return len(p), nil }
func (m *memStage) Flush() error                { return nil }
func (m *memStage) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// encodeStaged writes the LTX file hdr describes from staged page images:
// the pages in index up to hdr.Commit, in ascending order.
func encodeStaged(w io.Writer, hdr ltx.Header, stage io.ReaderAt, index map[uint32]int64, post ltx.Checksum, trailer *ltx.Trailer) error {
	pgnos := make([]uint32, 0, len(index))
	for pgno := range index {
		if pgno <= hdr.Commit {
			pgnos = append(pgnos, pgno)
		}
	}
	slices.Sort(pgnos)
	buf := make([]byte, hdr.PageSize)
	return encodeLTXTrailer(w, hdr, trailer, func(enc *ltx.Encoder) (ltx.Checksum, error) {
		for _, pgno := range pgnos {
			if _, err := stage.ReadAt(buf, index[pgno]); err != nil {
				return 0, fmt.Errorf("read staged page %d: %w", pgno, err)
			}
			if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, buf); err != nil {
				return 0, fmt.Errorf("encode page %d: %w", pgno, err)
			}
		}
		return post, nil
	})
}

// memMergeLimit is how many spooled bytes a batch may merge in memory. An
// in-memory merge holds the staged pages and the encoded batch at once, and
// the Go heap doubles what is live before it collects: at 32 MiB a busy
// database kept walfs's RSS above 200 MB.
const memMergeLimit = 8 << 20

// mergeBatch merges records into one LTX body: in memory for ordinary
// batches, through temp files for big ones. When the disk is full it falls
// back to the part of the batch that fits in memory, so uploads (which free
// spool space) keep going. The caller calls the returned cleanup once done
// with the body.
func (u *uploader) mergeBatch(inputs []spoolRecord) (io.Reader, int64, ltx.Header, ltx.Trailer, func() error, error) {
	var total int64
	for _, in := range inputs {
		total += in.Len
	}
	if total > memMergeLimit {
		// A merge on disk needs about twice the batch (staged pages, then
		// the batch file). When that would eat the space the app needs,
		// upload smaller batches from memory instead: they free spool space.
		var err error = syscall.ENOSPC
		if free, ok := freeBytes(u.stateDir); !ok || free > 4*total {
			var body io.Reader
			var size int64
			var hdr ltx.Header
			var trailer ltx.Trailer
			var cleanup func() error
			body, size, hdr, trailer, cleanup, err = u.mergeOnDisk(inputs)
			if err == nil || !errors.Is(err, syscall.ENOSPC) {
				return body, size, hdr, trailer, cleanup, err
			}
		}
		u.log.Warn("little disk space for merging spooled transactions: uploading a smaller batch from memory", "err", err)
		total = 0
		for i, in := range inputs {
			if total += in.Len; total > memMergeLimit && i > 0 {
				inputs = inputs[:i]
				break
			}
		}
	}
	var buf bytes.Buffer
	hdr, trailer, err := mergeRecords(inputs, &buf, "")
	if err != nil {
		return nil, 0, ltx.Header{}, ltx.Trailer{}, nil, err
	}
	return bytes.NewReader(buf.Bytes()), int64(buf.Len()), hdr, trailer, func() error { return nil }, nil
}

func (u *uploader) mergeOnDisk(inputs []spoolRecord) (io.Reader, int64, ltx.Header, ltx.Trailer, func() error, error) {
	fail := func(err error) (io.Reader, int64, ltx.Header, ltx.Trailer, func() error, error) {
		return nil, 0, ltx.Header{}, ltx.Trailer{}, nil, err
	}
	tmpDir := filepath.Join(u.stateDir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return fail(err)
	}
	out, err := os.CreateTemp(tmpDir, "batch-*.ltx")
	if err != nil {
		return fail(fmt.Errorf("create batch file: %w", err))
	}
	cleanup := func() error { return removeScratch(out) }
	bw := bufio.NewWriterSize(out, 256<<10)
	hdr, trailer, err := mergeRecords(inputs, bw, tmpDir)
	if err == nil {
		err = bw.Flush()
	}
	var size int64
	if err == nil {
		size, err = out.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fail(errors.Join(err, cleanup()))
	}
	return out, size, hdr, trailer, cleanup, nil
}
