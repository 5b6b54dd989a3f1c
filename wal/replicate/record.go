package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// A spool record holds one captured transaction as raw pages, so a commit
// costs a page checksum and a copy, not an LTX encoding: pages are
// compressed once, when a batch is merged for upload.
//
// Payload layout, big-endian: page size u32, commit (db size in pages) u32,
// timestamp (ms) i64, pre-apply checksum u64, post-apply checksum u64, page
// count u32, then per page: page number u32 and the page.
const rawHeaderSize = 4 + 4 + 8 + 8 + 8 + 4

// rawTxn is the decoded header of a record.
type rawTxn struct {
	PageSize  uint32
	Commit    uint32
	Timestamp int64
	Pre, Post ltx.Checksum
	NPages    uint32
}

// appendRawHeader starts a record payload in buf.
func appendRawHeader(buf []byte, h rawTxn) []byte {
	buf = binary.BigEndian.AppendUint32(buf, h.PageSize)
	buf = binary.BigEndian.AppendUint32(buf, h.Commit)
	buf = binary.BigEndian.AppendUint64(buf, uint64(h.Timestamp))
	buf = binary.BigEndian.AppendUint64(buf, uint64(h.Pre))
	buf = binary.BigEndian.AppendUint64(buf, uint64(h.Post))
	return binary.BigEndian.AppendUint32(buf, h.NPages)
}

// setRawPost patches the post-apply checksum and page count of a payload
// whose header was appended with placeholders.
func setRawPost(payload []byte, post ltx.Checksum, npages uint32) {
	binary.BigEndian.PutUint64(payload[24:32], uint64(post))
	binary.BigEndian.PutUint32(payload[32:36], npages)
}

var errBadRecord = errors.New("malformed spool record")

func parseRawHeader(b []byte) (rawTxn, error) {
	if len(b) < rawHeaderSize {
		return rawTxn{}, errBadRecord
	}
	h := rawTxn{
		PageSize:  binary.BigEndian.Uint32(b[0:4]),
		Commit:    binary.BigEndian.Uint32(b[4:8]),
		Timestamp: int64(binary.BigEndian.Uint64(b[8:16])),
		Pre:       ltx.Checksum(binary.BigEndian.Uint64(b[16:24])),
		Post:      ltx.Checksum(binary.BigEndian.Uint64(b[24:32])),
		NPages:    binary.BigEndian.Uint32(b[32:36]),
	}
	if !ltx.IsValidPageSize(h.PageSize) {
		return rawTxn{}, fmt.Errorf("%w: page size %d", errBadRecord, h.PageSize)
	}
	return h, nil
}

// readRawHeader reads the header of the record at rec.
func readRawHeader(r io.ReaderAt, rec record) (rawTxn, error) {
	var b [rawHeaderSize]byte
	if _, err := r.ReadAt(b[:], rec.Off); err != nil {
		return rawTxn{}, err
	}
	return parseRawHeader(b[:])
}

// eachRawPage calls fn for every page of the record at rec; data is reused.
// The pages are read in chunks of up to 256 KiB: a pass of 1-row commits
// leaves records of a few pages each, and a read per page was most of what
// merging them for an upload cost.
func eachRawPage(r io.ReaderAt, rec record, h rawTxn, fn func(pgno uint32, data []byte) error) error {
	want := int64(rawHeaderSize) + int64(h.NPages)*int64(4+h.PageSize)
	if want != rec.Len {
		return fmt.Errorf("%w: %d bytes for %d pages of %d", errBadRecord, rec.Len, h.NPages, h.PageSize)
	}
	step := int64(4 + h.PageSize)
	bp := readAheadPool.Get().(*[]byte)
	defer readAheadPool.Put(bp)
	buf := *bp
	per := int64(len(buf)) / step // pages per read: 3 of 64 KiB at least
	off := rec.Off + rawHeaderSize
	for left := int64(h.NPages); left > 0; {
		n := min(left, per)
		chunk := buf[:n*step]
		if got, err := r.ReadAt(chunk, off); got < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		for p := range n {
			page := chunk[p*step : (p+1)*step]
			if err := fn(binary.BigEndian.Uint32(page[:4]), page[4:]); err != nil {
				return err
			}
		}
		off += n * step
		left -= n
	}
	return nil
}
