package fusefs

import (
	"context"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/walfs/walfs/wal"
)

// dbFile serves a database (any file that is not a -wal, -shm or -journal).
//
// In userspace mode every handle is served by walfs, so that a write to the
// file (a checkpoint, in WAL mode) waits until the capture of its WAL has
// caught up, and so that the capturer learns which pages a rollback-journal
// transaction wrote. Reads stay cheap: every write comes through here, so the
// kernel keeps the page cache across writes and opens (ioMode.open says when
// it must not).
//
// In passthrough mode a handle opened on a file that is already a database
// goes to the kernel too (ioMode): one FUSE round trip per checkpointed page
// cost 1,000-row transactions more than half their speed, and a
// rollback-journal commit paid one per page it wrote. In WAL mode the capture
// then catches up when SQLite syncs the database at the end of a checkpoint
// (DBSync), before it may restart the WAL, and a WAL restart walfs did not
// see (synchronous=OFF) is finished from the file (wal.Capture.Poll). In
// rollback-journal mode the capturer finds the changed pages from the
// journal and the file at the commit (wal.RollbackChanges), without the
// writes.
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
// one inode. It also decides when the kernel may keep the file's page cache.
// A release counts from walfs's Release on; the node's next open waits until
// go-fuse has finished that RELEASE too (turns.go), or go-fuse's passthrough
// bookkeeping for the node goes wrong when the mode switches.
type ioMode struct {
	mu             sync.Mutex
	cached, direct int // open handles of each kind
	// left is the backing file as the last page-cached handle left it;
	// zero after a passthrough handle was opened.
	left fileStamp
}

// fileStamp identifies a version of a backing file: a write, truncation or
// replacement changes its ctime or inode.
type fileStamp struct {
	ino, size           int64
	ctimeSec, ctimeNsec int64
}

func stampOf(f *os.File) fileStamp {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileStamp{}
	}
	return fileStamp{ino: int64(st.Ino), size: st.Size, ctimeSec: st.Ctim.Sec, ctimeNsec: st.Ctim.Nsec}
}

// open picks the mode of a new handle on f: the mode of the handles already
// open, else passthrough exactly when want says so.
//
// A page-cached handle keeps the kernel's page cache (keepCache) while other
// page-cached handles are open, since every write since went through it, or
// when the file is still as the last one left it. Otherwise something wrote
// the backing file without the cache seeing it (a passthrough handle, or a
// program outside the mount), and the kernel must drop the cache: with
// explicit cache control (mount.go) nothing else would.
func (m *ioMode) open(f *os.File, want func() bool) (passthrough, keepCache bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.direct > 0:
		passthrough = true
	case m.cached > 0:
		passthrough, keepCache = false, true
	default:
		passthrough = want()
		keepCache = !passthrough && m.left != (fileStamp{}) && m.left == stampOf(f)
	}
	if passthrough {
		m.direct++
		m.left = fileStamp{}
	} else {
		m.cached++
	}
	return passthrough, keepCache
}

// release records that a handle of the given mode closed; left is its
// file's stamp just before, for page-cached handles.
func (m *ioMode) release(passthrough bool, left fileStamp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if passthrough {
		m.direct--
		return
	}
	if m.cached--; m.cached == 0 {
		m.left = left
	}
}

// kernelServes reports whether the file at path is one whose handles the
// kernel may serve: a database in WAL mode, or in a rollback-journal mode
// with an empty free list, or an empty file (a database being created, or
// any new file: cp, rsync). With a free list, each commit that changes a
// trunk page makes the capturer re-read that trunk's leaves
// (wal.RollbackChanges, Unsure), which costs more than serving the page
// writes. An empty file has no free list, and a transaction that fills it
// goes through a WAL or journal walfs reads as for any database (a first
// one is a snapshot); a file created, or emptied by O_TRUNC or truncate(2),
// by a writer outside SQLite is re-read when it closes (outside.go). A
// non-empty file that is not a database stays with walfs. It reads through its own O_NOATIME descriptor:
// looking must not change the file's atime.
func kernelServes(path string) bool {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOATIME|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	var b [wal.DBHeaderSize]byte
	n, err := syscall.Pread(fd, b[:], 0)
	switch {
	case err != nil:
		return false
	case n == 0:
		return true
	case n < len(b):
		return false
	}
	h, ok := wal.ParseDBHeader(b[:])
	return ok && (h.WALMode || h.FreePages == 0)
}

func (fsys *fileSystem) openDB(n *node, rel, path string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	f, err := os.OpenFile(path, int(flags)|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	d := &dbFile{LoopbackFile: fs.NewLoopbackFileFromOS(f), f: f, rel: rel, cap: fsys.cap, io: &n.io}
	pt, keepCache := n.io.open(f, func() bool { return fsys.passthrough && kernelServes(path) })
	d.pt = pt
	if d.pt {
		fsys.cap.DBPassthrough(rel, true)
		return d, 0, 0
	}
	if keepCache {
		return d, fuse.FOPEN_KEEP_CACHE, 0
	}
	return d, 0, 0
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
	var left fileStamp
	if !d.pt {
		left = stampOf(d.f)
	}
	errno := d.LoopbackFile.Release(ctx)
	d.io.release(d.pt, left)
	if d.pt {
		d.cap.DBPassthrough(d.rel, false)
	}
	if testHookReleased != nil {
		testHookReleased(d.rel, d.pt)
	}
	return errno
}

// testHookReleased, when set (tests only, before mounting), is called at the
// end of a database handle's Release, before go-fuse finishes the RELEASE.
var testHookReleased func(rel string, passthrough bool)

// PassthroughFd hands the kernel the backing file for handles chosen to be
// passed through (see dbFile).
func (d *dbFile) PassthroughFd() (int, bool) {
	if d.pt {
		return d.LoopbackFile.PassthroughFd()
	}
	return -1, false
}
