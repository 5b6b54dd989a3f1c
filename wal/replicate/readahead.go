package replicate

import (
	"io"
	"os"
	"sync"

	"github.com/walfs/walfs/wal"
)

// readAheadSize is how much of the WAL one read fetches while a poll walks
// new frames.
const readAheadSize = 256 << 10

// readAheadGap is how far after the end of the last read a read may start
// and still count as sequential: a frame header, rounded up.
const readAheadGap = 64

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// readAhead serves a passthrough poll's reads of the WAL's frames from large
// sequential reads instead of a read per frame header, page and spooled
// page. Bytes it hands out were read from the file during this poll, no
// earlier; the capture validates them by checksum as it would bytes read one
// frame at a time, and the sink spools exactly the bytes that validated.
// Reads of the WAL header and reads past size go to the file every time:
// the capture compares the header to detect a WAL restart.
//
// Only a read that starts where the last one ended (or a frame header
// after it: a page after the page before) fills the whole buffer; any other
// read fetches just its bytes. Validating frames reads the WAL in order, and
// so does spooling a transaction whose pages are each written once; a poll
// that takes frames from the wal-index (wal.PollIndexed) reads a page here
// and there, each page's newest frame, and a full buffer at each would read
// about as much as validating every frame.
type readAhead struct {
	f     *os.File
	size  int64 // file size when the poll began
	buf   *[]byte
	start int64 // file offset of (*buf)[0]
	n     int   // valid bytes in *buf
	last  int64 // end of the last read served; 0 before the first
}

func newReadAhead(f *os.File, size int64) *readAhead {
	return &readAhead{f: f, size: size, buf: readAheadPool.Get().(*[]byte)}
}

// release returns the buffer; the readAhead must not be used afterwards.
func (r *readAhead) release() {
	readAheadPool.Put(r.buf)
	r.buf, r.n = nil, 0
}

// window returns the bytes of [off, off+n) from the buffer, refilled from
// off when they are not in it. ok is false where the buffer is not used
// (the header, past size, longer than the buffer): read the file then. A
// refill the file cannot complete returns what it read, with its error
// (io.EOF when none), and leaves the buffer empty.
func (r *readAhead) window(off int64, n int) (b []byte, ok bool, err error) {
	end := off + int64(n)
	if off < wal.HeaderSize || end > r.size || n > readAheadSize {
		return nil, false, nil
	}
	seq := r.last == 0 || off >= r.last && off-r.last <= readAheadGap
	r.last = end
	if off < r.start || end > r.start+int64(r.n) {
		fill := int64(n)
		if seq {
			fill = readAheadSize
		}
		buf := (*r.buf)[:min(fill, r.size-off)]
		got, err := r.f.ReadAt(buf, off)
		r.start, r.n = off, got
		if got < n {
			if err == nil {
				err = io.EOF
			}
			r.n = 0
			return buf[:got], true, err
		}
	}
	return (*r.buf)[off-r.start : off-r.start+int64(n)], true, nil
}

// Peek implements wal.Peeker: nil unless the buffer holds all n bytes (the
// capture then reads them with ReadAt, which reports what went wrong).
func (r *readAhead) Peek(off int64, n int) []byte {
	if b, ok, err := r.window(off, n); ok && err == nil {
		return b
	}
	return nil
}

func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	b, ok, err := r.window(off, len(p))
	if !ok {
		return r.f.ReadAt(p, off)
	}
	return copy(p, b), err
}
