package fusefs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dbFile serves a database (any file that is not a -wal, -shm or -journal)
// through walfs, so that a write to it (a checkpoint, in WAL mode) waits
// until the capture of its WAL has caught up, and so that the capturer
// learns which pages a rollback-journal transaction wrote. Reads stay cheap: the kernel keeps the
// page cache across opens because every write comes through here.
type dbFile struct {
	*fs.LoopbackFile
	rel string
	cap Capturer
}

var (
	_ fs.FileWriter   = (*dbFile)(nil)
	_ fs.FileWritever = (*dbFile)(nil)
)

func (fsys *fileSystem) openDB(rel, path string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	f, err := os.OpenFile(path, int(flags)|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	return &dbFile{LoopbackFile: fs.NewLoopbackFileFromOS(f), rel: rel, cap: fsys.cap}, fuse.FOPEN_KEEP_CACHE, 0
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

// PassthroughFd keeps database files in userspace (see dbFile).
func (d *dbFile) PassthroughFd() (int, bool) { return -1, false }
