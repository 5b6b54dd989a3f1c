package fusefs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FsType is the file-system type the kernel shows for walfs mounts
// ("fuse.walfs" in /proc/mounts).
const FsType = "walfs"

// Options configure a mount.
type Options struct {
	DataDir    string // backing directory (absolute)
	MountPoint string // where the loopback appears (absolute)
	Capturer   Capturer
	// Passthrough lets the kernel read and write -wal files and database
	// files directly (the capturer reads them back: dbFile); journals and
	// files that are not yet databases are still served through walfs.
	Passthrough bool
	// AllowOther lets users other than the one running walfs enter the
	// mount. Either way the kernel checks every permission against the
	// files' owners and modes (default_permissions), as on the disk.
	AllowOther bool
	Logger     *slog.Logger
	Debug      bool // log every FUSE request
}

// Mount is a mounted walfs file system.
type Mount struct {
	server     *fuse.Server
	mountPoint string
	log        *slog.Logger
	root       *fs.Inode // for Quiet: the kernel's inode numbers of open files
	lockDev    string    // the mount's device as /proc/locks prints it; "" if unknown
}

// New mounts the data dir at the mount point and starts serving requests.
// The mount point must be an empty directory that is not already a mount;
// a missing one is created.
//
// New sets the process umask to 0: the kernel applies each caller's umask to
// the modes it sends, and a second mask would make files in the mount differ
// from files on the disk. Everything else the process creates must therefore
// give its mode explicitly.
func New(opts Options) (*Mount, error) {
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
	id, err := processIdentity()
	if err != nil {
		return nil, err
	}
	syscall.Umask(0)
	fsys := &fileSystem{cap: opts.Capturer, passthrough: opts.Passthrough, id: id, log: log}
	fsys.root = &fs.LoopbackRoot{Path: opts.DataDir, Dev: uint64(st.Dev)}
	fsys.root.NewNode = fsys.newNode
	rootNode := fsys.newNode(fsys.root, nil, "", &st)
	fsys.root.RootNode = rootNode

	timeout := time.Second
	mo := mountOptions(opts.DataDir, opts.Debug, opts.AllowOther)
	mo.DisableXAttrs = true
	mo.MaxWrite = 1 << 20
	// Without this the kernel drops a file's whole page cache whenever a
	// GETATTR shows a new mtime, which after any write it does (the
	// kernel stamps its own mtime first): a process reading a database
	// another one had just written re-read every page through walfs.
	// Every write comes through the mount; where the backing file can
	// change without the kernel's cache seeing it, walfs opens without
	// FOPEN_KEEP_CACHE (ioMode.open).
	mo.ExplicitDataCacheControl = true
	fopts := &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true, // mode 000 is a mode, not "unknown"
		MountOptions:    mo,
	}
	// fs.Mount, with OPEN and RELEASE taking turns per node (turns.go).
	m, err := serve(newTurns(fs.NewNodeFS(rootNode, fopts)), rootNode.EmbeddedInode(), opts.MountPoint, &fopts.MountOptions, log)
	if err == nil && m.lockDev == "" {
		log.Warn("cannot find the mount's device: databases written outside SQLite are checked without waiting for their writers")
	}
	return m, err
}

// mountOptions are the options every walfs mount shares (New, NewFollower).
func mountOptions(dataDir string, debug, allowOther bool) fuse.MountOptions {
	return fuse.MountOptions{
		// The kernel checks permissions from the attributes walfs
		// returns; without this it checks none and every user acts as
		// root in the mount.
		Options:     []string{"default_permissions"},
		FsName:      dataDir,
		Name:        FsType,
		DirectMount: os.Geteuid() == 0,
		Debug:       debug,
		AllowOther:  allowOther,
	}
}

// serve mounts raw at mountPoint, starts serving its requests and returns
// the mount once the kernel shows it. Its lockDev is "" where the mount's
// device cannot be found.
func serve(raw fuse.RawFileSystem, root *fs.Inode, mountPoint string, mo *fuse.MountOptions, log *slog.Logger) (*Mount, error) {
	server, err := fuse.NewServer(raw, mountPoint, mo)
	if err == nil {
		go server.Serve()
		err = server.WaitMount()
	}
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w (check that /dev/fuse exists and that you may use it; non-root users need fusermount3 from the fuse3 package)", mountPoint, err)
	}
	m := &Mount{server: server, mountPoint: mountPoint, log: log, root: root}
	if ok, e := IsMountPoint(mountPoint); ok {
		if dev, err := lockDev(e.Dev); err == nil {
			m.lockDev = dev
		}
	}
	return m, nil
}

// Wait blocks until the file system is unmounted.
func (m *Mount) Wait() { m.server.Wait() }

// Unmount detaches the file system. It fails with ErrBusy, naming the
// processes holding files open, unless lazy is set, in which case the mount
// is detached now and disappears once the last file is closed.
func (m *Mount) Unmount(lazy bool) error {
	if lazy {
		if err := syscall.Unmount(m.mountPoint, syscall.MNT_DETACH); err != nil && os.Geteuid() == 0 {
			return fmt.Errorf("lazy unmount %s: %w", m.mountPoint, err)
		} else if err != nil {
			return m.server.Unmount()
		}
		return nil
	}
	if err := m.server.Unmount(); err != nil {
		if holders := Holders(m.mountPoint); len(holders) > 0 {
			return &BusyError{MountPoint: m.mountPoint, Holders: holders}
		}
		return fmt.Errorf("unmount %s: %w", m.mountPoint, err)
	}
	return nil
}

// BusyError reports files still open inside the mount.
type BusyError struct {
	MountPoint string
	Holders    []Holder
}

// ErrBusy matches a BusyError with errors.Is.
var ErrBusy = errors.New("mount is busy")

func (e *BusyError) Error() string {
	parts := make([]string, 0, len(e.Holders))
	for _, h := range e.Holders {
		parts = append(parts, h.String())
	}
	return fmt.Sprintf("files are still open in %s by %s (close them, or unmount with --lazy)", e.MountPoint, strings.Join(parts, ", "))
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// CheckPaths refuses layouts that cannot work: a data dir inside the mount
// point or the other way round, a mount point that is not an empty directory
// or is already a mount. A missing mount point is created.
func CheckPaths(dataDir, mountPoint string, log *slog.Logger) error {
	if err := CheckLayout(dataDir, mountPoint); err != nil {
		return err
	}
	fi, err := os.Stat(mountPoint)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(mountPoint, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", mountPoint, err)
		}
		log.Info("created missing mount point", "path", mountPoint)
		return nil
	}
	if err != nil {
		if errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("mount point %s is a dead FUSE mount (run: walfs unmount %s)", mountPoint, mountPoint)
		}
		return fmt.Errorf("mount point %s: %w", mountPoint, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("mount point %s is not a directory (give an empty directory)", mountPoint)
	}
	if mounted, _ := IsMountPoint(mountPoint); mounted {
		return fmt.Errorf("mount point %s is already a mount (unmount it first, or pick another directory)", mountPoint)
	}
	entries, err := os.ReadDir(mountPoint)
	if err != nil {
		return fmt.Errorf("read mount point %s: %w", mountPoint, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("mount point %s is not empty (walfs mounts over an empty directory; your databases go in --data-dir): %w", mountPoint, ErrMountPointNotEmpty)
	}
	return nil
}

// ErrMountPointNotEmpty is matched by CheckPaths's (and New's) error for a
// mount point that holds files.
var ErrMountPointNotEmpty = errors.New("mount point not empty")

// CheckLayout refuses a data dir inside the mount point or the other way
// round, looking at the paths only (nothing needs to exist yet).
func CheckLayout(dataDir, mountPoint string) error {
	if !filepath.IsAbs(dataDir) || !filepath.IsAbs(mountPoint) {
		return fmt.Errorf("data dir and mount point must be absolute paths")
	}
	if within(dataDir, mountPoint) {
		return fmt.Errorf("data dir %s is inside mount point %s (put the data dir outside the mount)", dataDir, mountPoint)
	}
	if within(mountPoint, dataDir) {
		return fmt.Errorf("mount point %s is inside data dir %s (put the mount point outside the data dir)", mountPoint, dataDir)
	}
	return nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
