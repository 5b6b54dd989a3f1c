package wal

import (
	"io"
	"testing"
)

type nopSink struct{}

func (nopSink) Commit(*Txn, io.ReaderAt) error { return nil }

// After a transaction far bigger than keepFrames, the capture keeps no
// bookkeeping sized by it once it is emitted (newTxn's scratch) and once the
// WAL restarts (the frame list and the committed index): what a huge import
// leaves behind is bounded by a constant, not by the transaction.
func TestCaptureKeepsNothingSizedByABigTxn(t *testing.T) {
	const ps, n = 512, 5 * keepFrames
	f := &memFile{}
	c := NewCapture(nopSink{})
	w := newWALWriter(t, f, ps, false)
	w.afterOne = func(off int64, k int) {
		if err := c.Wrote(f, off, k, f.Size()); err != nil {
			t.Fatal(err)
		}
	}
	w.header()
	page := make([]byte, ps)
	for i := uint32(1); i <= n; i++ {
		commit := uint32(0)
		if i == n {
			commit = n
		}
		w.frame(i, commit, page)
	}
	if c.ncommit != n {
		t.Fatalf("committed frames: got %d, want %d", c.ncommit, n)
	}
	if cap(c.scratch) > keepFrames {
		t.Errorf("after the commit, newTxn's scratch holds %d refs", cap(c.scratch))
	}
	w.restart()
	w.frame(1, 1, page)
	if c.ncommit != 1 {
		t.Fatalf("after restart, committed frames: got %d, want 1", c.ncommit)
	}
	if cap(c.frames) > keepFrames || len(c.pages) > keepFrames {
		t.Errorf("after the restart the capture keeps room for %d frames and %d index entries", cap(c.frames), len(c.pages))
	}
}
