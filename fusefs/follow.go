package fusefs

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

// HeaderPatcher rewrites, on their way to a reader, the bytes of a file in a
// follower's view that must differ from the file on the disk (the follower
// core presents databases in another journal mode than the primary wrote
// them in, for instance).
type HeaderPatcher interface {
	// PatchHeader is called on every read of a regular file that returns
	// bytes, with the bytes about to be returned: p holds the bytes of rel
	// (a slash path relative to the data dir, as it was when the file was
	// opened) from file offset off. It may change p in place, and is
	// called from many goroutines at once.
	PatchHeader(rel string, off int64, p []byte)
}

// FollowOptions configure a follower's mount (NewFollower).
type FollowOptions struct {
	DataDir    string // backing directory (absolute), kept current by the follower core
	MountPoint string // where the read-only view appears (absolute)
	// Header patches the bytes every read returns; nil patches nothing.
	Header HeaderPatcher
	// AllowOther lets users other than the one running walfs enter the
	// mount. Either way the kernel checks every permission against the
	// files' owners and modes (default_permissions), as on the disk.
	AllowOther bool
	Logger     *slog.Logger
	Debug      bool // log every FUSE request
}

// NewFollower mounts a read-only view of the data dir at the mount point and
// starts serving requests: what a follower host shows its readers. Every
// change made through the view fails with EROFS; changes the follower core
// makes in the data dir are seen at once (no attribute, entry or data
// caching). The mount point must be an empty directory that is not already
// a mount; a missing one is created.
//
// One process is the exception: walfs itself (this process) may open files
// for writing, so that the core can take fcntl write locks on them through
// the mount and so keep readers out while it changes a database in place.
// Its handles still refuse every write. Locks are the kernel's own: walfs
// takes no part in them (as on the primary's mount), so a lock taken
// through the view excludes every reader of the view.
//
// The mount is not a read-only mount for the kernel (MS_RDONLY), which would
// refuse that open for writing. So access(2) with W_OK answers from the
// files' modes, as on a writable disk; the write itself fails with EROFS.
// Where the disk's permissions refuse a change, the kernel answers EACCES
// or EPERM before walfs can say EROFS.
func NewFollower(opts FollowOptions) (*Mount, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := CheckPaths(opts.DataDir, opts.MountPoint, log); err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(opts.DataDir, &st); err != nil {
		return nil, fmt.Errorf("stat data dir %s: %w", opts.DataDir, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, fmt.Errorf("data dir %s is not a directory", opts.DataDir)
	}
	view := &followView{dataDir: opts.DataDir, dev: st.Dev, header: opts.Header, pid: os.Getpid()}
	root := &roNode{view: view}

	// Nothing is cached in the kernel: sizes in particular must never be
	// stale, as SQLite compares the size fstat reports with the header.
	// A missing name is not cached either (the bridge answers ENOENT
	// without a timeout when NegativeTimeout is nil), so a database
	// that appears later is found.
	var zero time.Duration
	fopts := &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NullPermissions: true, // mode 000 is a mode, not "unknown"
		MountOptions:    mountOptions(opts.DataDir, opts.Debug, opts.AllowOther),
	}
	return serve(fs.NewNodeFS(root, fopts), root.EmbeddedInode(), opts.MountPoint, &fopts.MountOptions, log)
}

// followView is what every node of a follower's view shares. It is set once
// by NewFollower and only read afterwards.
type followView struct {
	dataDir string
	dev     uint64 // the data dir's device, masked out of inode numbers
	header  HeaderPatcher
	pid     int // this process: the only one whose opens for writing succeed
}

// ownThread reports whether the FUSE caller tid (the kernel names the
// calling thread) is a thread of this process. The caller is blocked in its
// request, so the id cannot have been reused meanwhile.
func (v *followView) ownThread(tid uint32) bool {
	return tid != 0 && unix.Tgkill(v.pid, int(tid), 0) == nil
}

// patch applies the header patcher, if any, to bytes read from rel at off.
func (v *followView) patch(rel string, off int64, p []byte) {
	if v.header != nil && len(p) > 0 {
		v.header.PatchHeader(rel, off, p)
	}
}
