package wal

import (
	"bytes"
	"testing"
)

// Follows tells a WAL that only grew since a capture last looked from one
// that was restarted, replaced or cut.
func TestFollows(t *testing.T) {
	const ps = 512
	page := func(b byte) []byte { return bytes.Repeat([]byte{b}, ps) }
	load := func(f *memFile) *Capture {
		t.Helper()
		c := NewCapture(nil)
		if _, err := c.Load(f, f.Size()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(what string, a, b *Capture, wantAhead int, wantOK bool) {
		t.Helper()
		if ahead, ok := a.Follows(b); ahead != wantAhead || ok != wantOK {
			t.Errorf("%s: Follows = %d, %v; want %d, %v", what, ahead, ok, wantAhead, wantOK)
		}
	}

	f := &memFile{}
	check("no WAL on either side", load(f), load(f), 0, true)
	w := newWALWriter(t, f, ps, false)
	w.header()
	w.frame(1, 0, page(1))
	w.frame(2, 2, page(2))
	before := load(f)
	check("no generation, then one", load(&memFile{}), before, 0, false)
	check("unchanged", before, load(f), 0, true)

	w.frame(1, 0, page(3))
	w.frame(3, 3, page(4))
	w.frame(2, 0, page(5)) // open transaction: not counted
	grown := load(f)
	check("grown by one commit", before, grown, 2, true)
	check("the later capture does not follow the earlier", grown, before, 0, false)

	cut := &memFile{b: append([]byte(nil), f.b[:FrameOffset(ps, 1)]...)}
	check("cut before the capture's last commit", before, load(cut), 0, false)

	other := &memFile{b: append([]byte(nil), f.b...)}
	copy(other.b[FrameOffset(ps, 1)+FrameHeaderSize:], page(9)) // same header, another commit
	check("a commit frame replaced", before, load(other), 0, false)

	w.restart()
	w.frame(1, 0, page(6))
	w.frame(2, 2, page(7))
	w.frame(3, 3, page(8))
	check("restarted", before, load(f), 0, false)
}
