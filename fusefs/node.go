package fusefs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/walfs/walfs/wal"
)

// StateDirName is the directory inside the data dir that holds walfs's own
// state; the mount hides it (wal.StateDirName, the one definition).
const StateDirName = wal.StateDirName

// node is a loopback node that routes SQLite -wal files through walfs.
type node struct {
	fs.LoopbackNode
	fsys *fileSystem
	io   ioMode // database files and journals: which kind of handle is open (dbfile.go)
}

// fileSystem holds what every node shares.
type fileSystem struct {
	root        *fs.LoopbackRoot
	cap         Capturer
	passthrough bool        // see Options.Passthrough
	id          identity    // the mount process's credentials (caller.go)
	outside     sync.Map    // fs.FileHandle -> outsideHandle: handles that changed a file outside SQLite's protocol (outside.go)
	journals    journalEnds // how each database's journals end (journalends.go)
	log         *slog.Logger
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeReleaser       = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
)

func (fsys *fileSystem) newNode(_ *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
	return &node{LoopbackNode: fs.LoopbackNode{RootData: fsys.root}, fsys: fsys}
}

// rel returns the node's path relative to the data dir, slash separated.
func (n *node) rel() string { return n.Path(n.Root()) }

func (n *node) child(name string) string {
	if p := n.rel(); p != "" {
		return p + "/" + name
	}
	return name
}

// hidden reports whether name in this directory is walfs's state dir.
func (n *node) hidden(name string) bool {
	return name == StateDirName && n.IsRoot()
}

// walDB returns the database a -wal path belongs to.
func walDB(rel string) (string, bool) {
	if strings.HasSuffix(rel, "-wal") && len(rel) > len("-wal") {
		return strings.TrimSuffix(rel, "-wal"), true
	}
	return "", false
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.hidden(name) {
		return nil, syscall.ENOENT
	}
	return n.LoopbackNode.Lookup(ctx, name, out)
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 || !n.IsRoot() {
		return fh, fuseFlags, errno
	}
	if _, ok := fh.(fs.FileReaddirenter); !ok {
		return fh, fuseFlags, errno
	}
	return &hidingDir{FileHandle: fh}, fuseFlags, 0
}

// fileKind says how a file is served.
type fileKind int

const (
	kindLoopback fileKind = iota // plain loopback (kernel passthrough when available)
	kindWAL                      // -wal: capture (walfile.go)
	kindJournal                  // -journal: commit detection (journal.go)
	kindDB                       // any other file, so writes to databases are seen (dbfile.go)
)

func (fsys *fileSystem) kind(rel string) fileKind {
	_, wal := walDB(rel)
	_, journal := journalDB(rel)
	switch {
	case wal:
		return kindWAL
	case journal:
		return kindJournal
	case strings.HasSuffix(rel, "-shm"):
		return kindLoopback
	}
	return kindDB
}

// openSpecial opens the backing file of rel for a handle of its kind.
func (fsys *fileSystem) openSpecial(n *node, rel string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	path := filepath.Join(fsys.root.Path, rel)
	switch fsys.kind(rel) {
	case kindWAL:
		db, _ := walDB(rel)
		flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
		// Capture reads frames back through this descriptor: a program
		// that opens a WAL write-only (cp) still gets one walfs can read.
		f, err := os.OpenFile(path, int(flags&^syscall.O_ACCMODE|syscall.O_RDWR)|syscall.O_NOFOLLOW, 0)
		if err != nil && flags&syscall.O_ACCMODE == syscall.O_WRONLY {
			f, err = os.OpenFile(path, int(flags)|syscall.O_NOFOLLOW, 0)
		}
		if err != nil {
			return nil, 0, fs.ToErrno(err)
		}
		wf, errno := fsys.openWAL(n, db, f)
		return wf, 0, errno
	case kindJournal:
		db, _ := journalDB(rel)
		return fsys.openJournal(n, db, path, flags)
	default:
		return fsys.openDB(n, rel, path, flags)
	}
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	rel := n.rel()
	if n.fsys.kind(rel) == kindLoopback {
		return n.LoopbackNode.Open(ctx, flags)
	}
	fh, fuseFlags, errno := n.fsys.openSpecial(n, rel, flags)
	if errno == 0 {
		n.fsys.watchOpen(fh, rel, flags, false)
	}
	return fh, fuseFlags, errno
}

// Release tells the capturer once more about a file a handle changed
// outside SQLite's protocol, now that its writer is done (outside.go).
func (n *node) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	var errno syscall.Errno
	if r, ok := f.(fs.FileReleaser); ok {
		errno = r.Release(ctx)
	}
	n.fsys.watchRelease(f)
	return errno
}

// changesNothing are the SETATTR fields that name no attribute to change.
const changesNothing = fuse.FATTR_FH | fuse.FATTR_LOCKOWNER | fuse.FATTR_CTIME

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&^changesNothing == 0 {
		// chown(f, -1, -1) arrives empty; on the disk it still updates
		// ctime. The kernel has checked the caller may.
		p := filepath.Join(n.RootData.Path, n.rel())
		if err := unix.Fchownat(unix.AT_FDCWD, p, -1, -1, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fs.ToErrno(err)
		}
		return n.LoopbackNode.Getattr(ctx, f, out)
	}
	size, truncating := in.GetSize()
	if truncating {
		n.fsys.resized(n.rel(), int64(size))
	}
	if jdb, ok := journalDB(n.rel()); ok && truncating {
		// TRUNCATE journal mode commits by truncating the journal.
		if err := n.fsys.cap.JournalEnd(jdb); err != nil {
			return errnoOf(err)
		}
		if size == 0 {
			// A commit (TRUNCATE mode, or PERSIST with journal_size_limit
			// 0). PERSIST cuts a journal to a non-zero journal_size_limit
			// after zeroing its header: that is no visible end.
			n.fsys.journals.ended(jdb, true)
		}
	}
	db, isWAL := walDB(n.rel())
	if f == nil && truncating && isWAL {
		// Path-based truncate(2): route it through a handle so capture sees it.
		file, err := os.OpenFile(filepath.Join(n.RootData.Path, n.rel()), os.O_RDWR|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return fs.ToErrno(err)
		}
		defer file.Close()
		if n.fsys.passthrough {
			if err := n.fsys.cap.BeforeWALTruncate(db); err != nil {
				return errnoOf(err)
			}
		}
		if errno := n.LoopbackNode.Setattr(ctx, nil, in, out); errno != 0 {
			return errno
		}
		return errnoOf(n.fsys.cap.WALTruncate(db, file, int64(size)))
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.hidden(name) {
		return nil, syscall.EPERM
	}
	ino, errno := n.LoopbackNode.Link(ctx, target, name, out)
	if rel := n.child(name); errno == 0 && n.fsys.kind(rel) != kindLoopback {
		n.fsys.cap.Suspect(rel, "a file was linked to its name")
	}
	return ino, errno
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.hidden(name) {
		return syscall.EPERM
	}
	if db, ok := journalDB(n.child(name)); ok {
		// DELETE journal mode commits by deleting the journal.
		if err := n.fsys.cap.JournalEnd(db); err != nil {
			return errnoOf(err)
		}
		n.fsys.journals.ended(db, true)
	} else if n.fsys.kind(n.child(name)) == kindDB {
		n.fsys.journals.forget(n.child(name))
	}
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 {
		n.fsys.cap.Removed(n.child(name))
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if n.hidden(name) || (ok && np.hidden(newName)) {
		return syscall.EPERM
	}
	from := n.child(name)
	var to string
	if ok {
		to = np.child(newName)
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 {
		n.fsys.cap.Removed(from)
		if to != "" {
			n.fsys.cap.Removed(to) // whatever was replaced there is gone too
			if n.fsys.kind(to) != kindLoopback {
				n.fsys.cap.Suspect(to, "a file was renamed over it")
			}
		}
		if flags&unix.RENAME_EXCHANGE != 0 && n.fsys.kind(from) != kindLoopback {
			n.fsys.cap.Suspect(from, "a file was exchanged with it")
		}
	}
	return errno
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.hidden(name) {
		return syscall.EPERM
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

// Getxattr answers ENOSYS on top of MountOptions.DisableXAttrs: the kernel
// then stops asking for security.capability on every write.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// hidingDir drops the state directory from the root listing.
type hidingDir struct {
	fs.FileHandle
}

var (
	_ fs.FileReaddirenter = (*hidingDir)(nil)
	_ fs.FileSeekdirer    = (*hidingDir)(nil)
	_ fs.FileReleasedirer = (*hidingDir)(nil)
	_ fs.FileFsyncdirer   = (*hidingDir)(nil)
)

func (d *hidingDir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	for {
		e, errno := d.FileHandle.(fs.FileReaddirenter).Readdirent(ctx)
		if errno != 0 || e == nil || e.Name != StateDirName {
			return e, errno
		}
	}
}

func (d *hidingDir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.FileHandle.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *hidingDir) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.FileHandle.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *hidingDir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if f, ok := d.FileHandle.(fs.FileFsyncdirer); ok {
		return f.Fsyncdir(ctx, flags)
	}
	return 0
}
