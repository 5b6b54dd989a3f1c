package fusefs

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// LoopbackOptions configure a bare loopback mount (NewLoopback).
type LoopbackOptions struct {
	DataDir    string // backing directory (absolute)
	MountPoint string // where the loopback appears (absolute)
	// Passthrough lets the kernel read and write every regular file
	// directly where it can (Linux >= 6.9, CAP_SYS_ADMIN); go-fuse falls
	// back to serving the file itself where it cannot.
	Passthrough bool
	Logger      *slog.Logger
	Debug       bool // log every FUSE request
}

// Loopback is a mounted bare go-fuse loopback: fs.NewLoopbackRoot and
// nothing of walfs's own file system (no capture, no page-cache control, no
// turns, no creating as the caller beyond what go-fuse does itself). walfs
// bench measures it as the floor that any go-fuse file system over a plain
// directory starts from. It is mounted as walfs mounts are (the same
// options and timeouts) so that the comparison is fair.
type Loopback struct {
	*Mount
	count *requestCount
}

// LoopbackStats counts what reached the loopback's process: file opens
// (OPEN and CREATE of regular files), how many of them the kernel serves by
// passthrough, and the READ, WRITE and FSYNC requests that came to
// userspace. With passthrough for every file, Reads and Writes stay 0.
type LoopbackStats struct {
	Opens            int64 `json:"opens"`
	PassthroughOpens int64 `json:"passthrough_opens"`
	Reads            int64 `json:"reads"`
	Writes           int64 `json:"writes"`
	Fsyncs           int64 `json:"fsyncs"`
}

// NewLoopback mounts a bare loopback of the data dir at the mount point and
// starts serving requests. The paths are checked as for New. Like New, it
// sets the process umask to 0, so that files created in the mount get the
// modes the callers asked for (the kernel has already applied theirs).
func NewLoopback(opts LoopbackOptions) (*Loopback, error) {
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
	syscall.Umask(0)
	var rootNode fs.InodeEmbedder
	if opts.Passthrough {
		// go-fuse's LoopbackFile offers its fd for passthrough
		// (PassthroughFd); go-fuse registers it with the kernel at every
		// open, and stops trying for good once the kernel refuses.
		n, err := fs.NewLoopbackRoot(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("loopback of %s: %w", opts.DataDir, err)
		}
		rootNode = n
	} else {
		root := &fs.LoopbackRoot{Path: opts.DataDir, Dev: uint64(st.Dev)}
		root.NewNode = func(rootData *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
			return &noPassthroughNode{fs.LoopbackNode{RootData: rootData}}
		}
		rootNode = root.NewNode(root, nil, "", &st)
		root.RootNode = rootNode
	}

	timeout := time.Second
	mo := mountOptions(opts.DataDir, opts.Debug, false)
	mo.Name = "loopback" // fuse.loopback: not a walfs mount for walfs ls or unmount
	mo.DisableXAttrs = true
	mo.MaxWrite = 1 << 20
	fopts := &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true,
		MountOptions:    mo,
	}
	count := &requestCount{RawFileSystem: fs.NewNodeFS(rootNode, fopts)}
	m, err := serve(count, rootNode.EmbeddedInode(), opts.MountPoint, &fopts.MountOptions, log)
	if err != nil {
		return nil, err
	}
	return &Loopback{Mount: m, count: count}, nil
}

// KernelOffersPassthrough reports whether the kernel offered passthrough
// when the mount started (Linux >= 6.9). go-fuse uses it only where the
// process may also register backing files (CAP_SYS_ADMIN): Stats tells
// whether it did.
func (l *Loopback) KernelOffersPassthrough() bool {
	return l.server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH != 0
}

// Stats returns the counts so far.
func (l *Loopback) Stats() LoopbackStats {
	c := l.count
	return LoopbackStats{Opens: c.opens.Load(), PassthroughOpens: c.passthrough.Load(), Reads: c.reads.Load(), Writes: c.writes.Load(), Fsyncs: c.fsyncs.Load()}
}

// requestCount counts requests on their way to go-fuse's bridge; it changes
// none of them.
type requestCount struct {
	fuse.RawFileSystem
	opens, passthrough, reads, writes, fsyncs atomic.Int64
}

func (c *requestCount) opened(st fuse.Status, out *fuse.OpenOut) {
	if st != fuse.OK {
		return
	}
	c.opens.Add(1)
	if out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0 {
		c.passthrough.Add(1)
	}
}

func (c *requestCount) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := c.RawFileSystem.Open(cancel, in, out)
	c.opened(st, out)
	return st
}

func (c *requestCount) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	st := c.RawFileSystem.Create(cancel, in, name, out)
	c.opened(st, &out.OpenOut)
	return st
}

func (c *requestCount) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	c.reads.Add(1)
	return c.RawFileSystem.Read(cancel, in, buf)
}

func (c *requestCount) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	c.writes.Add(1)
	return c.RawFileSystem.Write(cancel, in, data)
}

// Writev is how go-fuse delivers WRITE; on ENOSYS it calls Write instead,
// which counts it.
func (c *requestCount) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	n, st := c.RawFileSystem.Writev(cancel, in, data)
	if st != fuse.ENOSYS {
		c.writes.Add(1)
	}
	return n, st
}

func (c *requestCount) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	c.fsyncs.Add(1)
	return c.RawFileSystem.Fsync(cancel, in)
}

// noPassthroughNode is go-fuse's loopback node whose files never offer the
// kernel a backing file: every read and write comes to userspace.
type noPassthroughNode struct {
	fs.LoopbackNode
}

func (n *noPassthroughNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	return userspaceFile(fh), fl, errno
}

func (n *noPassthroughNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return ch, userspaceFile(fh), fl, errno
}

// noPassthroughFile is go-fuse's loopback file without its PassthroughFd.
type noPassthroughFile struct {
	*fs.LoopbackFile
}

func (noPassthroughFile) PassthroughFd() (int, bool) { return -1, false }

func userspaceFile(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return noPassthroughFile{lf}
	}
	return fh
}
