package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// walFile is an open SQLite -wal file. Reads and everything else go straight
// to the backing file; writes and truncations are reported to the capturer
// after they land.
type walFile struct {
	*fs.LoopbackFile
	f           *os.File // same descriptor as LoopbackFile's, for the capturer's reads
	ino         *fs.Inode
	db          string
	cap         Capturer
	passthrough bool
	log         *slog.Logger
}

var (
	_ fs.FileWriter    = (*walFile)(nil)
	_ fs.FileWritever  = (*walFile)(nil)
	_ fs.FileSetattrer = (*walFile)(nil)
	_ fs.FileFsyncer   = (*walFile)(nil)
)

func (fsys *fileSystem) openWAL(n *node, db string, f *os.File) (*walFile, syscall.Errno) {
	if err := fsys.cap.WALOpen(db, f); err != nil {
		return nil, errnoOf(errors.Join(err, f.Close()))
	}
	return &walFile{LoopbackFile: fs.NewLoopbackFileFromOS(f), f: f, ino: n.EmbeddedInode(), db: db, cap: fsys.cap, passthrough: fsys.passthrough, log: fsys.log}, 0
}

var zeroPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func (w *walFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, errno := w.LoopbackFile.Write(ctx, data, off)
	return w.captured(n, errno, off)
}

// Writev is what go-fuse calls when the kernel hands the data over in
// several buffers; without it those writes would bypass capture.
func (w *walFile) Writev(ctx context.Context, iov [][]byte, off int64) (uint32, syscall.Errno) {
	n, errno := w.LoopbackFile.Writev(ctx, iov, off)
	return w.captured(n, errno, off)
}

// captured reports a write that reached the backing file to the capturer.
// When the capture fails, the write fails and its bytes are zeroed; when
// zeroing fails too, the write fails with EIO whatever the capture's error
// was, since the commit those bytes completed may still validate.
func (w *walFile) captured(n uint32, errno syscall.Errno, off int64) (uint32, syscall.Errno) {
	if errno != 0 {
		return n, errno
	}
	err := w.cap.WALWrite(w.db, w.f, off, int(n))
	if err == nil {
		return n, 0
	}
	zerr := w.invalidate(off, int(n))
	// The kernel's page cache may still hold the bytes just written (the
	// mount controls the cache explicitly, mount.go), and a recovery reads
	// the WAL through it. Dropping them waits for the folios this write
	// holds locked: after the reply.
	go w.dropCache(off, int64(n))
	if zerr != nil {
		w.log.Error("wal write not captured and its bytes not zeroed: a recovery may replay a commit walfs did not capture",
			"db", w.db, "capture_err", err, "err", zerr)
		return 0, syscall.EIO
	}
	return 0, errnoOf(err)
}

// invalidate overwrites bytes whose capture failed, so the commit frame they
// completed can never validate during SQLite's recovery.
func (w *walFile) invalidate(off int64, n int) error {
	zp := zeroPool.Get().(*[]byte)
	defer zeroPool.Put(zp)
	for n > 0 {
		c := min(n, len(*zp))
		if _, err := w.f.WriteAt((*zp)[:c], off); err != nil {
			return fmt.Errorf("invalidate uncaptured wal bytes of %s at %d: %w", w.db, off, err)
		}
		off += int64(c)
		n -= c
	}
	return nil
}

// dropCache drops n bytes at off of the WAL from the kernel's page cache.
// It runs after the write's reply, so nobody is left to fail: a failure is
// logged, since a recovery through the cache could then replay a commit
// walfs did not capture. ENOENT means the kernel caches nothing of the file.
func (w *walFile) dropCache(off, n int64) {
	if errno := w.ino.NotifyContent(off, n); errno != 0 && errno != syscall.ENOENT {
		w.log.Error("cannot drop invalidated wal bytes from the kernel's page cache; a recovery through it may replay a commit that failed",
			"db", w.db, "offset", off, "bytes", n, "err", errno)
	}
}

func (w *walFile) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok && w.passthrough {
		// The kernel wrote what is about to be cut off: capture it first.
		if err := w.cap.BeforeWALTruncate(w.db); err != nil {
			return errnoOf(err)
		}
	}
	if errno := w.LoopbackFile.Setattr(ctx, in, out); errno != 0 {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		return errnoOf(w.cap.WALTruncate(w.db, w.f, int64(size)))
	}
	return 0
}

// Fsync makes the WAL durable and, in userspace mode, the spooled
// transactions too. The two fsyncs run at once: the commit is acknowledged
// only after both returned, and waiting for one disk flush after the other
// halved synchronous=FULL. In passthrough mode the spool is not synced here:
// see Replicator.WALSync.
func (w *walFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if w.passthrough {
		return syncFile(w.f, flags)
	}
	spool := make(chan error, 1)
	go func() { spool <- w.cap.WALSync(w.db) }()
	errno := syncFile(w.f, flags)
	if err := <-spool; errno == 0 {
		errno = errnoOf(err)
	}
	return errno
}

// PassthroughFd offers the kernel the backing descriptor only in passthrough
// mode; otherwise -wal writes must come through walfs to be captured.
// (go-fuse enables passthrough on its own for any handle that offers one.)
func (w *walFile) PassthroughFd() (int, bool) {
	if w.passthrough {
		return w.LoopbackFile.PassthroughFd()
	}
	return -1, false
}

// syncFile flushes a backing file the way the application asked: fdatasync
// when the kernel passes FUSE_FSYNC_FDATASYNC (SQLite's usual call), fsync
// otherwise. A full fsync also commits the mtime change, which on ext4 costs a
// journal commit per transaction under synchronous=FULL.
func syncFile(f *os.File, flags uint32) syscall.Errno {
	var err error
	if flags&fsyncDatasync != 0 {
		err = syscall.Fdatasync(int(f.Fd()))
	} else {
		err = syscall.Fsync(int(f.Fd()))
	}
	return fs.ToErrno(err)
}

// fsyncDatasync is FUSE_FSYNC_FDATASYNC from the kernel's fuse.h.
const fsyncDatasync = 1
