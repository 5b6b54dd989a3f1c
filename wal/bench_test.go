package wal

import (
	"fmt"
	"testing"
)

// TestWroteAllocs: following frames that do not commit allocates nothing
// beyond the amortised growth of the frame list.
func TestWroteAllocs(t *testing.T) {
	const frames = 2000
	f := &memFile{}
	w := newWALWriter(t, f, 4096, false)
	w.header()
	for i := range frames {
		w.frame(uint32(i%50+1), 0, w.page(i%7))
	}
	c := NewCapture(nil)
	if err := c.Wrote(f, 0, HeaderSize, HeaderSize); err != nil {
		t.Fatal(err)
	}
	i := int64(0)
	avg := testing.AllocsPerRun(frames-1, func() {
		off := FrameOffset(4096, i)
		if err := c.Wrote(f, off, FrameHeaderSize, off+FrameHeaderSize); err != nil {
			t.Fatal(err)
		}
		if err := c.Wrote(f, off+FrameHeaderSize, 4096, off+FrameHeaderSize+4096); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if len(c.frames) != frames {
		t.Fatalf("validated %d frames", len(c.frames))
	}
	if avg > 0.05 {
		t.Errorf("%.3f allocations per frame", avg)
	}
}

// BenchmarkWrote measures the capture cost per frame as SQLite writes them
// (two writes per frame, a commit every 8 frames).
func BenchmarkWrote(b *testing.B) {
	for _, ps := range []uint32{4096, 65536} {
		b.Run(fmt.Sprint(ps), func(b *testing.B) {
			const n = 256
			f := &memFile{}
			w := newWALWriter(b, f, ps, false)
			w.header()
			for i := range n {
				commit := uint32(0)
				if i%8 == 7 {
					commit = 100
				}
				w.frame(uint32(i%100+1), commit, w.page(i))
			}
			b.SetBytes(int64(n) * (FrameHeaderSize + int64(ps)))
			for b.Loop() {
				c := NewCapture(nil)
				if err := c.Wrote(f, 0, HeaderSize, HeaderSize); err != nil {
					b.Fatal(err)
				}
				for i := int64(0); i < n; i++ {
					off := FrameOffset(ps, i)
					c.Wrote(f, off, FrameHeaderSize, off+FrameHeaderSize)
					c.Wrote(f, off+FrameHeaderSize, int(ps), off+FrameHeaderSize+int64(ps))
				}
			}
		})
	}
}
