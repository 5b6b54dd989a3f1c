package fusefs

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// turns makes the OPEN and RELEASE requests of one node take turns: each
// runs to its end inside go-fuse before another starts.
//
// go-fuse (v2.12) keeps one passthrough backing id per node, takes a
// reference to it for every handle it opens in passthrough mode, and drops
// one on every RELEASE of the node — also for a page-cached handle, which
// never took one. A database node switches from page-cached to passthrough
// handles (ioMode.open) as soon as walfs's Release of its last page-cached
// handle has run; go-fuse then still has to finish that RELEASE. An OPEN
// served in between registers a backing id that the finishing RELEASE
// unregisters: the kernel fails that open, or the next passthrough open of
// the inode (a second backing id for it), with EIO, and SQLite quietly
// reopens the file read-only ("attempt to write a readonly database" at its
// next write). With turns, ioMode sees a handle as gone only once go-fuse
// has forgotten it too.
//
// Only OPEN and RELEASE take turns, per node, so opens and releases of
// different files never wait for each other. CREATE needs no turn: it makes
// a node the kernel cannot name yet.
type turns struct {
	fuse.RawFileSystem

	mu    sync.Mutex
	nodes map[uint64]*turn // nodes with a request running or waiting
}

type turn struct {
	sync.Mutex
	users int // requests holding or waiting for the turn; guarded by turns.mu
}

// Test hooks, set only by tests and before mounting: testHookTurnWait is
// called when an OPEN or RELEASE has to wait for its node's turn,
// testHookReleaseDone when go-fuse has finished a RELEASE.
var testHookTurnWait, testHookReleaseDone func()

func newTurns(fs fuse.RawFileSystem) *turns {
	return &turns{RawFileSystem: fs, nodes: map[uint64]*turn{}}
}

func (t *turns) take(node uint64) *turn {
	t.mu.Lock()
	tn := t.nodes[node]
	if tn == nil {
		tn = &turn{}
		t.nodes[node] = tn
	}
	tn.users++
	busy := tn.users > 1
	t.mu.Unlock()
	if busy && testHookTurnWait != nil {
		testHookTurnWait()
	}
	tn.Lock()
	return tn
}

func (t *turns) give(node uint64, tn *turn) {
	tn.Unlock()
	t.mu.Lock()
	if tn.users--; tn.users == 0 {
		delete(t.nodes, node)
	}
	t.mu.Unlock()
}

func (t *turns) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	tn := t.take(in.NodeId)
	defer t.give(in.NodeId, tn)
	return t.RawFileSystem.Open(cancel, in, out)
}

func (t *turns) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	tn := t.take(in.NodeId)
	defer t.give(in.NodeId, tn)
	t.RawFileSystem.Release(cancel, in)
	if testHookReleaseDone != nil {
		testHookReleaseDone()
	}
}
