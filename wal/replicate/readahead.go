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

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// readAhead serves a passthrough poll's reads of the WAL's frames from large
// sequential reads instead of a read per frame header, page and spooled
// page. Bytes it hands out were read from the file during this poll, no
// earlier; the capture validates them by checksum as it would bytes read one
// frame at a time, and the sink spools exactly the bytes that validated.
// Reads of the WAL header and reads past size go to the file every time:
// the capture compares the header to detect a WAL restart.
type readAhead struct {
	f     *os.File
	size  int64 // file size when the poll began
	buf   *[]byte
	start int64 // file offset of (*buf)[0]
	n     int   // valid bytes in *buf
}

func newReadAhead(f *os.File, size int64) *readAhead {
	return &readAhead{f: f, size: size, buf: readAheadPool.Get().(*[]byte)}
}

// release returns the buffer; the readAhead must not be used afterwards.
func (r *readAhead) release() {
	readAheadPool.Put(r.buf)
	r.buf, r.n = nil, 0
}

// Peek implements wal.Peeker: the bytes of [off, off+n) from the buffer,
// refilled from off when they are not in it; nil where ReadAt would go to
// the file (the header, past size) or could not fill the buffer.
func (r *readAhead) Peek(off int64, n int) []byte {
	end := off + int64(n)
	if off < wal.HeaderSize || end > r.size || n > readAheadSize {
		return nil
	}
	if off < r.start || end > r.start+int64(r.n) {
		buf := (*r.buf)[:min(int64(readAheadSize), r.size-off)]
		got, _ := r.f.ReadAt(buf, off) //walfs:ignore-error a short read is answered by nil: ReadAt reads again and reports it
		r.start, r.n = off, got
		if got < n {
			r.n = 0
			return nil
		}
	}
	return (*r.buf)[off-r.start : off-r.start+int64(n)]
}

func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < wal.HeaderSize || end > r.size || len(p) > readAheadSize {
		return r.f.ReadAt(p, off)
	}
	if off < r.start || end > r.start+int64(r.n) {
		buf := (*r.buf)[:min(int64(readAheadSize), r.size-off)]
		n, err := r.f.ReadAt(buf, off)
		r.start, r.n = off, n
		if n < len(p) {
			if err == nil {
				err = io.EOF
			}
			r.n = 0
			return copy(p, buf[:n]), err
		}
	}
	return copy(p, (*r.buf)[off-r.start:]), nil
}
