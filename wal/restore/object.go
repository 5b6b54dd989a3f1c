package restore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/walfs/walfs/s3backend"
)

// object is one planned object on its way into a temporary file. It can be
// read while it downloads (reader), so applying a large snapshot overlaps
// with fetching it instead of waiting for the last byte. A large object
// downloads as several parts at once (ranged GETs); readers see the bytes
// up to the first gap.
type object struct {
	info s3backend.FileInfo
	path string

	mu    sync.Mutex
	cond  sync.Cond
	parts []part
	done  bool // the download ended; err says how
	err   error
}

// part is one byte range [off, end) of an object, downloaded by one stream;
// end < 0 means "to the end of the object" (size unknown).
type part struct {
	off, end int64
	n        int64 // bytes written from off so far
}

// complete reports whether every byte of p is on disk.
func (p part) complete() bool { return p.end >= 0 && p.off+p.n >= p.end }

// newObject plans the parts of info's download: one per partSize bytes (a
// partSize of 0 means one part).
func newObject(info s3backend.FileInfo, dir string, partSize int64) *object {
	o := &object{info: info, path: filepath.Join(dir, fmt.Sprintf("%04x-%016x-%016x.ltx", info.Level, info.MinTXID, info.MaxTXID))}
	o.cond.L = &o.mu
	if info.Size <= 0 {
		o.parts = []part{{end: -1}}
		return o
	}
	if partSize <= 0 {
		partSize = info.Size
	}
	for off := int64(0); off < info.Size; off += partSize {
		o.parts = append(o.parts, part{off: off, end: min(off+partSize, info.Size)})
	}
	return o
}

// grew records n more bytes written to part i.
func (o *object) grew(i int, n int64) {
	o.mu.Lock()
	o.parts[i].n += n
	o.mu.Unlock()
	o.cond.Broadcast()
}

// position returns where part i's stream continues.
func (o *object) position(i int) (off, end int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.parts[i]
	return p.off + p.n, p.end
}

// readable returns the bytes on disk without a gap from the start. Caller
// holds o.mu.
func (o *object) readable() int64 {
	for _, p := range o.parts {
		if !p.complete() {
			return p.off + p.n
		}
	}
	return o.parts[len(o.parts)-1].end
}

// finish records the end of the download.
func (o *object) finish(err error) {
	o.mu.Lock()
	o.done, o.err = true, err
	o.mu.Unlock()
	o.cond.Broadcast()
}

// wait blocks until the download ends and returns its error.
func (o *object) wait() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for !o.done {
		o.cond.Wait()
	}
	return o.err
}

// failed returns the download's error if it already ended with one.
func (o *object) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// reader opens the temporary file for reading as it grows.
func (o *object) reader() (*objectReader, error) {
	f, err := os.Open(o.path)
	if err != nil {
		return nil, fmt.Errorf("restore: open downloaded %s: %w", s3backend.Key(o.info), err)
	}
	return &objectReader{o: o, f: f}, nil
}

// objectReader reads an object's temporary file up to the bytes downloaded
// so far, waiting for more; it ends where the download ended and fails
// with the download's error.
type objectReader struct {
	o   *object
	f   *os.File
	off int64
}

func (r *objectReader) Read(p []byte) (int, error) {
	o := r.o
	o.mu.Lock()
	for o.readable() <= r.off && !o.done {
		o.cond.Wait()
	}
	n, done, err := o.readable(), o.done, o.err
	if done && err == nil {
		n = o.parts[len(o.parts)-1].off + o.parts[len(o.parts)-1].n // size unknown: all written
	}
	o.mu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case r.off >= n && done:
		return 0, io.EOF
	case r.off >= n:
		return 0, nil // cannot happen: the loop waits for more
	}
	k, rerr := r.f.ReadAt(p[:min(int64(len(p)), n-r.off)], r.off)
	r.off += int64(k)
	if rerr == io.EOF && k > 0 {
		rerr = nil
	}
	return k, rerr
}

func (r *objectReader) Close() error { return r.f.Close() }
