package replicate

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
)

// hookLog records what Options.Uploaded and Options.Removed were told.
type hookLog struct {
	mu     sync.Mutex
	events []string
	last   map[string]Pos
}

func (h *hookLog) uploaded(db string, info s3backend.FileInfo, pos Pos) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if info.DB != db || info.MaxTXID != pos.TXID || info.Size <= 0 || info.CreatedAt.IsZero() {
		h.events = append(h.events, fmt.Sprintf("bad upload %s %+v %+v", db, info, pos))
		return
	}
	h.events = append(h.events, fmt.Sprintf("uploaded %s level %d %d-%d", db, info.Level, info.MinTXID, info.MaxTXID))
	h.last[db] = pos
}

func (h *hookLog) removed(db string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, "removed "+db)
}

// take returns the events since the last take.
func (h *hookLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := h.events
	h.events = nil
	return ev
}

// The uploader tells Options.Uploaded of every level-0 file and snapshot
// it put, with the position it saved; a deleted database is told to
// Options.Removed, and its dropped transactions are never reported.
func TestUploadHooks(t *testing.T) {
	h := &hookLog{last: map[string]Pos{}}
	g := newQueueRigWith(t, func(o *Options) { o.Uploaded, o.Removed = h.uploaded, h.removed })
	h.take() // the rig's first flush
	g.commit("a")
	g.commit("b")
	g.flush()
	up := g.d.up.Status().Uploaded
	if got, want := fmt.Sprint(h.take()), fmt.Sprintf("[uploaded app.db level 0 %d-%d]", up.TXID-1, up.TXID); got != want {
		t.Fatalf("after two commits: %s, want %s", got, want)
	}
	if h.last["app.db"] != up {
		t.Fatalf("reported position %+v, want the saved %+v", h.last["app.db"], up)
	}
	snap := g.snapshot()
	g.flush()
	if got, want := fmt.Sprint(h.take()), fmt.Sprintf("[uploaded app.db level 9 1-%d]", snap); got != want {
		t.Fatalf("after a snapshot: %s, want %s", got, want)
	}

	g.commit("dropped")
	g.live.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(g.path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		g.r.Removed("app.db" + suffix)
	}
	g.flush()
	if got := fmt.Sprint(h.take()); got != "[removed app.db]" {
		t.Fatalf("after the delete: %s, want only the removal", got)
	}

	makeWALDatabase(t, g.path, 2)
	again := g.snapshot()
	g.flush()
	if got, want := fmt.Sprint(h.take()), fmt.Sprintf("[uploaded app.db level 9 1-%d]", again); got != want {
		t.Fatalf("after the database was created again: %s, want %s", got, want)
	}

	// Deleted while its upload is in flight: the upload lands, but the
	// database is gone, so only the removal is reported.
	g.snapshot()
	g.down.Inject(memstore.Fault{Op: memstore.OpWrite, Times: 1, Then: func(memstore.Call) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(g.path + suffix); err != nil && !os.IsNotExist(err) {
				t.Error(err)
			}
			g.r.Removed("app.db" + suffix)
		}
	}})
	g.flush()
	if got := fmt.Sprint(h.take()); got != "[removed app.db]" {
		t.Fatalf("deleted during its upload: %s, want only the removal", got)
	}
}
