package follow

import (
	"fmt"
	"os"
	"sync"

	"github.com/superfly/ltx"
)

// sumFile is a database file that keeps its LTX checksum (docs/format.md)
// up to date as pages are written and the file is truncated: each write
// first reads the pages it replaces and takes their checksums out. LTX
// applies write whole pages at page offsets (restore.ApplyFile).
type sumFile struct {
	f        *os.File
	pageSize int64
	lockPgno uint32

	mu   sync.Mutex // ApplyFile writes from its own goroutine
	sum  ltx.Checksum
	size int64
	old  []byte
}

func newSumFile(f *os.File, pageSize uint32, sum ltx.Checksum) (*sumFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &sumFile{f: f, pageSize: int64(pageSize), lockPgno: ltx.LockPgno(pageSize), sum: sum &^ ltx.ChecksumFlag, size: fi.Size()}, nil
}

// Checksum is the database checksum of what the file holds now.
func (s *sumFile) Checksum() ltx.Checksum {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ltx.ChecksumFlag | s.sum
}

func (s *sumFile) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off%s.pageSize != 0 || int64(len(p))%s.pageSize != 0 {
		return 0, fmt.Errorf("write of %d bytes at %d is not whole pages", len(p), off)
	}
	if err := s.takeOut(off, min(off+int64(len(p)), s.size)); err != nil {
		return 0, err
	}
	n, err := s.f.WriteAt(p, off)
	if err != nil {
		return n, err
	}
	for i := int64(0); i < int64(len(p)); i += s.pageSize {
		s.add(off+i, p[i:i+s.pageSize])
	}
	s.size = max(s.size, off+int64(len(p)))
	return n, nil
}

func (s *sumFile) Truncate(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size < s.size {
		if err := s.takeOut(size, s.size); err != nil {
			return err
		}
	} else if size > s.size {
		// Pages an LTX file did not write past the old end read as zeros.
		zero := make([]byte, s.pageSize)
		for off := s.size; off < size; off += s.pageSize {
			s.add(off, zero)
		}
	}
	if err := s.f.Truncate(size); err != nil {
		return err
	}
	s.size = size
	return nil
}

// takeOut removes the checksums of the pages in [from, to) as on disk.
func (s *sumFile) takeOut(from, to int64) error {
	for off := from; off < to; {
		n := min(to-off, 256*s.pageSize)
		if int64(cap(s.old)) < n {
			s.old = make([]byte, n)
		}
		buf := s.old[:n]
		if _, err := s.f.ReadAt(buf, off); err != nil {
			return fmt.Errorf("read pages at %d: %w", off, err)
		}
		for i := int64(0); i < n; i += s.pageSize {
			s.add(off+i, buf[i:i+s.pageSize]) // XOR: adding again takes out
		}
		off += n
	}
	return nil
}

func (s *sumFile) add(off int64, page []byte) {
	pgno := uint32(off/s.pageSize) + 1
	if pgno == s.lockPgno {
		return
	}
	s.sum ^= ltx.ChecksumPage(pgno, page) &^ ltx.ChecksumFlag
}
