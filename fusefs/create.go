package fusefs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Everything that makes a new name in the backing directory runs under the
// caller's credentials (caller.go), with the mode exactly as the kernel sent
// it: go-fuse's loopback creates as root, chowns to the caller afterwards
// (losing a setgid directory's group and the set-id bits the chown clears)
// and passes modes through os.FileMode, which drops setuid, setgid and
// sticky bits.

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if n.hidden(name) {
		return nil, nil, 0, syscall.EPERM
	}
	p := n.backing(name)
	asked := flags
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	var fd int
	err := n.fsys.id.asCaller(ctx, func() (err error) {
		fd, err = syscall.Open(p, int(flags)|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, mode)
		return err
	})
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	ino, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno != 0 {
		syscall.Close(fd) //walfs:ignore-error nothing was written through fd; the lookup's errno is the answer
		return nil, nil, 0, errno
	}
	rel := n.child(name)
	switch n.fsys.kind(rel) {
	case kindLoopback:
		return ino, fs.NewLoopbackFileFromOS(os.NewFile(uintptr(fd), p)), 0, 0
	case kindJournal:
		// SQLite creates a journal per transaction in DELETE mode: serve
		// the descriptor just made rather than open the file again.
		db, _ := journalDB(rel)
		j := n.fsys.journalHandle(ino.Operations().(*node), db, os.NewFile(uintptr(fd), p), flags)
		n.fsys.watchOpen(j, rel, asked, true)
		return ino, j, 0, 0
	}
	// walfs serves (and reads) the file through a handle of its kind.
	syscall.Close(fd) //walfs:ignore-error nothing was written through fd; the file is reopened below
	flags &^= syscall.O_CREAT | syscall.O_EXCL | syscall.O_TRUNC
	fh, fuseFlags, errno := n.fsys.openSpecial(ino.Operations().(*node), rel, flags)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	n.fsys.watchOpen(fh, rel, asked, true)
	return ino, fh, fuseFlags, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.hidden(name) {
		return nil, syscall.EPERM
	}
	p := n.backing(name)
	if err := n.fsys.id.asCaller(ctx, func() error { return syscall.Mkdir(p, mode) }); err != nil {
		return nil, fs.ToErrno(err)
	}
	return n.made(ctx, name, out, func() error { return syscall.Rmdir(p) })
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.hidden(name) {
		return nil, syscall.EPERM
	}
	p := n.backing(name)
	if err := n.fsys.id.asCaller(ctx, func() error { return syscall.Mknod(p, mode, int(rdev)) }); err != nil {
		return nil, fs.ToErrno(err)
	}
	return n.made(ctx, name, out, func() error { return syscall.Unlink(p) })
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.hidden(name) {
		return nil, syscall.EPERM
	}
	p := n.backing(name)
	if err := n.fsys.id.asCaller(ctx, func() error { return syscall.Symlink(target, p) }); err != nil {
		return nil, fs.ToErrno(err)
	}
	return n.made(ctx, name, out, func() error { return syscall.Unlink(p) })
}

// made looks up a name just created so the kernel gets its inode, undoing
// the creation if that fails.
func (n *node) made(ctx context.Context, name string, out *fuse.EntryOut, undo func() error) (*fs.Inode, syscall.Errno) {
	ino, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno != 0 {
		undo() //walfs:ignore-error the lookup's errno is the answer; a leftover name is visible, not lost
		return nil, errno
	}
	return ino, 0
}

// backing is the path of name, in this directory, in the data dir.
func (n *node) backing(name string) string {
	return filepath.Join(n.RootData.Path, n.rel(), name)
}
