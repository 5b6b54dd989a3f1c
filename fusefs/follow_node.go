package fusefs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// roNode is a file or directory in a follower's view. It holds no state of
// its own: each request finds the backing file by the node's path in the
// tree go-fuse keeps (Inode.Path), and the kernel re-asks for every entry and
// attribute (no timeouts), so that path is the one just looked up.
//
// It implements the requests that read and refuses, with EROFS, every one
// that would change something. It is written out rather than built on
// fs.LoopbackNode, whose other methods (Setattr, Link, Tmpfile, Ioctl on its
// handles, ...) would each have to be found and overridden to stay read-only.
// Locks are not implemented on purpose: the kernel keeps them (see
// NewFollower).
type roNode struct {
	fs.Inode
	view *followView
}

var (
	_ fs.NodeLookuper       = (*roNode)(nil)
	_ fs.NodeGetattrer      = (*roNode)(nil)
	_ fs.NodeOpendirHandler = (*roNode)(nil)
	_ fs.NodeReadlinker     = (*roNode)(nil)
	_ fs.NodeOpener         = (*roNode)(nil)
	_ fs.NodeStatfser       = (*roNode)(nil)
	_ fs.NodeGetxattrer     = (*roNode)(nil)
	_ fs.NodeListxattrer    = (*roNode)(nil)

	_ fs.NodeCreater        = (*roNode)(nil)
	_ fs.NodeTmpfiler       = (*roNode)(nil)
	_ fs.NodeMkdirer        = (*roNode)(nil)
	_ fs.NodeMknoder        = (*roNode)(nil)
	_ fs.NodeSymlinker      = (*roNode)(nil)
	_ fs.NodeLinker         = (*roNode)(nil)
	_ fs.NodeUnlinker       = (*roNode)(nil)
	_ fs.NodeRmdirer        = (*roNode)(nil)
	_ fs.NodeRenamer        = (*roNode)(nil)
	_ fs.NodeSetattrer      = (*roNode)(nil)
	_ fs.NodeSetxattrer     = (*roNode)(nil)
	_ fs.NodeRemovexattrer  = (*roNode)(nil)
	_ fs.NodeCopyFileRanger = (*roNode)(nil)
	_ fs.NodeAllocater      = (*roNode)(nil)
)

// rel returns the node's path relative to the data dir, slash separated.
func (n *roNode) rel() string { return n.Path(n.Root()) }

// path returns the node's backing path.
func (n *roNode) path() string { return filepath.Join(n.view.dataDir, n.rel()) }

func (n *roNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == StateDirName && n.IsRoot() {
		return nil, syscall.ENOENT
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(n.path(), name), &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			n.RmChild(name) // removed from the data dir: forget the name too
		}
		return nil, fs.ToErrno(err)
	}
	out.Attr.FromStat(&st)
	// The inode number is the backing file's (mixed with its device where
	// that is not the data dir's, as go-fuse's loopback does), so a file
	// keeps its node, and the kernel its locks, for as long as it exists.
	// A number the backing file system reuses for a new file after the old
	// one is gone maps to the old node if the kernel still knows it; that
	// is harmless, as no handle can be open on it: every handle holds its
	// backing file open, which keeps the number from being reused.
	swap := func(d uint64) uint64 { return d<<32 | d>>32 }
	id := fs.StableAttr{Mode: st.Mode, Gen: 1, Ino: swap(st.Dev) ^ swap(n.view.dev) ^ st.Ino}
	return n.NewInode(ctx, &roNode{view: n.view}, id), 0
}

func (n *roNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(*roFile); ok {
		return h.Getattr(ctx, out)
	}
	p, stat := n.path(), syscall.Lstat
	if n.IsRoot() {
		stat = syscall.Stat // the data dir may be a symlink
	}
	var st syscall.Stat_t
	if err := stat(p, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	return 0
}

func (n *roNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := fs.NewLoopbackDirStream(n.path())
	if errno != 0 || !n.IsRoot() {
		return ds, 0, errno
	}
	if _, ok := ds.(fs.FileReaddirenter); !ok {
		ds.Close()
		return nil, 0, syscall.EIO // go-fuse's loopback streams are readdirenters
	}
	return &hidingDir{FileHandle: ds}, 0, 0
}

func (n *roNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	target, err := os.Readlink(n.path())
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return []byte(target), 0
}

// Open opens the backing file read-only, for direct I/O: every read reaches
// walfs, so it sees the file as it is now, patched (roFile.Read). An open
// for writing fails with EROFS, except for walfs's own threads (see
// NewFollower). O_TRUNC and O_CREAT never arrive: the kernel truncates with
// a SETATTR and creates with CREATE, both refused.
func (n *roNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		c, ok := fuse.FromContext(ctx)
		if !ok || !n.view.ownThread(c.Pid) {
			return nil, 0, syscall.EROFS
		}
	}
	f, err := os.OpenFile(n.path(), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	// NOFLUSH: a close never waits for walfs. walfs opens files here itself
	// (to take locks), and a walfs killed with one open would otherwise
	// wait forever on its own FLUSH while exiting.
	return &roFile{f: f, rel: n.rel(), view: n.view}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
}

func (n *roNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var s syscall.Statfs_t
	if err := syscall.Statfs(n.view.dataDir, &s); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&s)
	return 0
}

func (n *roNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	sz, err := unix.Lgetxattr(n.path(), attr, dest)
	return uint32(sz), fs.ToErrno(err)
}

func (n *roNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	sz, err := unix.Llistxattr(n.path(), dest)
	return uint32(sz), fs.ToErrno(err)
}

// The requests that would change something. None reaches the data dir.

func (n *roNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (n *roNode) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (n *roNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *roNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *roNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *roNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *roNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (n *roNode) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (n *roNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (n *roNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (n *roNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (n *roNode) Removexattr(ctx context.Context, attr string) syscall.Errno { return syscall.EROFS }

func (n *roNode) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut, length, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

func (n *roNode) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return syscall.EROFS
}
