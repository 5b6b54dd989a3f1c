package replicate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A power cut took spool files that nothing had synced (the spool is not
// synced on the commit path) and left later ones. The restart drops what no
// longer chains onto the replica, spools a snapshot of the database, which
// holds every commit, and the replica restores to it. Before the restart
// dropped them, the uploader waited forever for the missing TXIDs.
func TestRestartAfterPowerCutTookSpoolFiles(t *testing.T) {
	for _, lost := range []string{"the snapshot", "a segment"} {
		t.Run(lost, func(t *testing.T) {
			g := newQueueRig(t)
			var gone string
			if lost == "the snapshot" {
				gone = g.d.spool.snapshotPath(g.snapshot())
			} else {
				g.commit("a1")
				g.rotate()
				gone = g.d.spool.segmentPath(g.d.up.uploadedTXID() + 1)
			}
			g.commit("b1")
			g.commit("b2")
			g.rotate()
			g.commit("c1")
			if err := g.r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(gone); err != nil {
				t.Fatalf("the file the power cut takes: %v", err)
			}

			r, err := New(Options{
				DataDir: filepath.Dir(g.path), Store: g.store, Logger: testLogger(t),
				Capture: CapturePassthrough, Maintenance: MaintenanceOptions{Disabled: true},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := r.Flush(ctx); err != nil {
				t.Fatalf("flush after the restart: %v", err)
			}
			requireRestoreMatches(t, g.store, "app.db", g.live, allRows)
		})
	}
}
