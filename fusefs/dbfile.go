package fusefs

import (
	"bytes"
	"context"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dbFile serves a database (any file that is not a -wal, -shm or -journal).
//
// In userspace mode every handle is served by walfs, so that a write to the
// file (a checkpoint, in WAL mode) waits until the capture of its WAL has
// caught up, and so that the capturer learns which pages a rollback-journal
// transaction wrote. Reads stay cheap: the kernel keeps the page cache across
// opens because every write comes through here.
//
// In passthrough mode a handle opened on a database that is already in WAL
// mode goes to the kernel too (ioMode): one FUSE round trip per checkpointed
// page cost 1,000-row transactions more than half their speed. The capture
// then catches up when SQLite syncs the database at the end of a checkpoint
// (DBSync), before it may restart the WAL, and a WAL restart walfs did not
// see (synchronous=OFF) is finished from the file (wal.Capture.Poll).
type dbFile struct {
	*fs.LoopbackFile
	f   *os.File
	rel string
	cap Capturer
	io  *ioMode
	pt  bool // the kernel does reads and writes (passthrough)
}

var (
	_ fs.FileWriter   = (*dbFile)(nil)
	_ fs.FileWritever = (*dbFile)(nil)
	_ fs.FileFsyncer  = (*dbFile)(nil)
	_ fs.FileReleaser = (*dbFile)(nil)
)

// ioMode keeps the handles of one database file in one I/O mode: the kernel
// fails an open (EIO) that would mix page-cached and passthrough handles on
// one inode.
type ioMode struct {
	mu             sync.Mutex
	cached, direct int // open handles of each kind
}

// open picks the mode of a new handle on the file at path: the mode of the
// handles already open, else passthrough exactly when allowed and the file is
// a database in WAL mode.
func (m *ioMode) open(path string, allowed bool) (passthrough bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.direct > 0:
		passthrough = true
	case m.cached > 0:
		passthrough = false
	default:
		passthrough = allowed && isWALDatabase(path)
	}
	if passthrough {
		m.direct++
	} else {
		m.cached++
	}
	return passthrough
}

func (m *ioMode) release(passthrough bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if passthrough {
		m.direct--
	} else {
		m.cached--
	}
}

// isWALDatabase reports whether the file at path starts with a SQLite header
// whose read and write versions say WAL mode (both 2). It reads through its
// own O_NOATIME descriptor: looking must not change the file's atime.
func isWALDatabase(path string) bool {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOATIME|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	var b [20]byte
	if n, _ := syscall.Pread(fd, b[:], 0); n < len(b) {
		return false
	}
	return bytes.Equal(b[:16], []byte("SQLite format 3\x00")) && b[18] == 2 && b[19] == 2
}

func (fsys *fileSystem) openDB(n *node, rel, path string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	f, err := os.OpenFile(path, int(flags)|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	d := &dbFile{LoopbackFile: fs.NewLoopbackFileFromOS(f), f: f, rel: rel, cap: fsys.cap, io: &n.io}
	d.pt = n.io.open(path, fsys.passthrough)
	if d.pt {
		fsys.cap.DBPassthrough(rel, true)
		return d, 0, 0
	}
	return d, fuse.FOPEN_KEEP_CACHE, 0
}

func (d *dbFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := d.cap.BeforeWrite(d.rel, off, len(data)); err != nil {
		return 0, errnoOf(err)
	}
	return d.LoopbackFile.Write(ctx, data, off)
}

func (d *dbFile) Writev(ctx context.Context, iov [][]byte, off int64) (uint32, syscall.Errno) {
	n := 0
	for _, b := range iov {
		n += len(b)
	}
	if err := d.cap.BeforeWrite(d.rel, off, n); err != nil {
		return 0, errnoOf(err)
	}
	return d.LoopbackFile.Writev(ctx, iov, off)
}

// Fsync lets the capturer finish what the checkpoint being made durable
// copied out of the WAL, then syncs the file.
func (d *dbFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if err := d.cap.DBSync(d.rel); err != nil {
		return errnoOf(err)
	}
	return syncFile(d.f, flags)
}

func (d *dbFile) Release(ctx context.Context) syscall.Errno {
	errno := d.LoopbackFile.Release(ctx)
	d.io.release(d.pt)
	if d.pt {
		d.cap.DBPassthrough(d.rel, false)
	}
	return errno
}

// PassthroughFd hands the kernel the backing file for handles chosen to be
// passed through (see dbFile).
func (d *dbFile) PassthroughFd() (int, bool) {
	if d.pt {
		return d.LoopbackFile.PassthroughFd()
	}
	return -1, false
}
