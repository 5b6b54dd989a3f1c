package wal

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// The open-tail rule (tail.go): while a big transaction is written into the
// WAL and the wal-index names no new commit, a poll does not read its frames
// back each time; in all they are read about twice, where the checksum path
// reads them once per poll. Its commit is captured when its commit frame is
// the file's last, before the wal-index names it. A wal-index that is not
// live (it names an old commit while later ones are in the file, followed
// by an open transaction) delays those commits only until the open
// transaction has grown by tailMin frames, and CatchUp takes them at once.
func TestOpenTail(t *testing.T) {
	const ps = 512
	p := newIndexedPair(t, ps, false)
	p.w.header()
	p.commits(10)
	shm := indexOf(t, p.f, ps, 10)
	p.poll(shm, "10 commits")

	const big = 2000
	bigTxn(t, p, shm, big)
	if !p.fast.SkippedTail() {
		t.Errorf("SkippedTail is false after a poll that left an open transaction unread")
	}

	// Its commit frame is the file's last; the wal-index does not name it
	// yet.
	p.w.frame(99, uint32(100+big), p.w.page(99))
	p.poll(shm, "commit not yet in the wal-index")
	if p.fast.SkippedTail() {
		t.Errorf("SkippedTail is true after a poll that validated the whole file")
	}
	if got, want := p.fast.Committed().End, FrameOffset(ps, 10+big+1); got != want {
		t.Fatalf("committed end %d, want %d: the commit was not captured", got, want)
	}

	// A wal-index that is not live: two commits past it, then an open
	// transaction.
	p.commits(2)
	for i := range 5 {
		p.w.frame(uint32(100+i), 0, p.w.page(5000+i))
	}
	end := FrameOffset(ps, 10+big+1+2)
	for _, c := range []struct {
		name string
		poll func(*Capture) error
	}{
		{"PollIndexed, once the open transaction has grown", func(c *Capture) error {
			for i := range tailMin {
				p.w.frame(uint32(200+i), 0, p.w.page(6000+i))
			}
			return c.PollIndexed(p.f, shm, p.f.Size())
		}},
		{"CatchUp", func(c *Capture) error { return c.CatchUp(p.f, shm, p.f.Size()) }},
	} {
		fast := NewCapture(&recSink{})
		fast.MergePolls, fast.indexMin = true, 1
		if _, err := fast.Load(&countingReader{r: bytes.NewReader(p.f.b[:FrameOffset(ps, 10+big+1)])}, FrameOffset(ps, 10+big+1)); err != nil {
			t.Fatal(err)
		}
		if err := c.poll(fast); err != nil {
			t.Fatal(err)
		}
		if got := fast.Committed().End; got != end {
			t.Errorf("%s: committed end %d, want %d", c.name, got, end)
		}
	}
}

// bigTxn writes a transaction of n frames into p's WAL without its commit,
// polling both captures every 10 frames, and requires the wal-index path
// to read its frames at most three times in all.
func bigTxn(t *testing.T, p *indexedPair, shm *memFile, n int) {
	t.Helper()
	slow, fast := &countingReader{r: p.f}, &countingReader{r: p.f}
	for i := range n {
		p.w.frame(uint32(100+i), 0, p.w.page(1000+i))
		if (i+1)%10 != 0 {
			continue
		}
		if err := p.slow.Poll(slow, p.f.Size()); err != nil {
			t.Fatal(err)
		}
		if err := p.fast.PollIndexed(fast, shm, p.f.Size()); err != nil {
			t.Fatal(err)
		}
	}
	txn := int64(n) * (FrameHeaderSize + int64(p.w.ps))
	t.Logf("open transaction of %d bytes: the checksum path read %d bytes, the open-tail rule %d", txn, slow.n, fast.n)
	if fast.n > 3*txn {
		t.Errorf("the open-tail rule read %d bytes for a %d-byte open transaction; want at most three times it", fast.n, txn)
	}
	if slow.n < 50*txn {
		t.Errorf("the checksum path read only %d bytes: the test does not poll an open transaction as it should", slow.n)
	}
}

// Before the first commit in a new WAL file, SQLite's wal-index header has
// no salts and no frames: the open-tail rule holds for that transaction too,
// and its commit is captured.
func TestOpenTailFreshWAL(t *testing.T) {
	const ps = 512
	p := newIndexedPair(t, ps, true)
	p.w.header()
	p.w.frame(1, 1, p.w.page(1))
	shm := indexOf(t, p.f, ps, 1)
	zero := make([]byte, 48) // the header as SQLite writes it before a first commit
	copy(zero, shm.b[:16])
	s1, s2 := Checksum(nativeBigEndian, 0, 0, zero[:40])
	binary.NativeEndian.PutUint32(zero[40:], s1)
	binary.NativeEndian.PutUint32(zero[44:], s2)
	fresh := &memFile{}
	fresh.WriteAt(zero, 0)
	fresh.WriteAt(zero, indexHeaderSize)
	p.f.Truncate(0)
	p.w.header()
	bigTxn(t, p, fresh, 1000)
	p.w.frame(99, 1100, p.w.page(99))
	p.poll(fresh, "commit of the first transaction")
	if got, want := p.fast.Committed().End, FrameOffset(ps, 1001); got != want {
		t.Fatalf("committed end %d, want %d: the commit was not captured", got, want)
	}
}

// After a restart the WAL file keeps the frames of the longer generation
// before it behind the new one's: a commit of the new generation that the
// wal-index does not name yet is in the middle of the file, before frames
// that commit nothing, and is captured.
func TestOpenTailAfterRestart(t *testing.T) {
	const ps = 512
	p := newIndexedPair(t, ps, false)
	p.w.header()
	p.commits(100)
	for i := range 10 { // a transaction rolled back: the file's last frames commit nothing
		p.w.frame(uint32(50+i), 0, p.w.page(6000+i))
	}
	p.poll(indexOf(t, p.f, ps, 100), "first generation")
	p.w.restart()
	p.w.frame(1, 0, p.w.page(7001))
	// SQLite's wal-index after the restart: the new salts, no frame.
	shm := indexOf(t, p.f, ps, 2)
	hdr := shm.b[:indexHeaderSize]
	binary.NativeEndian.PutUint32(hdr[16:], 0)
	s1, s2 := Checksum(nativeBigEndian, 0, 0, hdr[:40])
	binary.NativeEndian.PutUint32(hdr[40:], s1)
	binary.NativeEndian.PutUint32(hdr[44:], s2)
	copy(shm.b[indexHeaderSize:], hdr)
	p.poll(shm, "a frame of the new generation before the old one's")
	p.w.frame(2, 5, p.w.page(7002))
	p.poll(shm, "a commit of the new generation before the old one's frames")
	if got, want := p.fast.Committed().End, FrameOffset(ps, 2); got != want {
		t.Fatalf("committed end %d, want %d: the new generation's commits were not captured", got, want)
	}
}
