package fusefs

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// roFile is an open file of a follower's view. It owns f, the backing file
// opened read-only, from Open until Release; rel is the file's path when it
// was opened, which names it to the header patcher.
type roFile struct {
	f    *os.File
	rel  string
	view *followView
}

var (
	_ fs.FileReader    = (*roFile)(nil)
	_ fs.FileWriter    = (*roFile)(nil)
	_ fs.FileFsyncer   = (*roFile)(nil)
	_ fs.FileReleaser  = (*roFile)(nil)
	_ fs.FileGetattrer = (*roFile)(nil)
)

// Read reads the backing file where it stands now (the follower core changes
// it in place) and patches the bytes on their way out.
func (h *roFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fs.ToErrno(err)
	}
	h.view.patch(h.rel, off, dest[:n])
	return fuse.ReadResultData(dest[:n]), 0
}

// Write refuses: only walfs's own threads get a handle open for writing,
// and they get one to take write locks with, not to write.
func (h *roFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

// Fsync succeeds as on the disk: nothing was written through the handle.
func (h *roFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return fs.ToErrno(h.f.Sync())
}

func (h *roFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.f.Fd()), &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	return 0
}

func (h *roFile) Release(ctx context.Context) syscall.Errno {
	return fs.ToErrno(h.f.Close())
}
