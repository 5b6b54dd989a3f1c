package wal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// indexOf builds the wal-index SQLite would hold for the WAL in f with
// frames 1..mx committed (mx counts frames; frame mx must be a commit frame),
// as wal.c lays it out (walindex.go).
func indexOf(t *testing.T, f *memFile, ps uint32, mx int) *memFile {
	t.Helper()
	ne := binary.NativeEndian
	last := ParseFrameHeader(f.b[FrameOffset(ps, int64(mx-1)):])
	if last.Commit == 0 {
		t.Fatalf("frame %d is not a commit frame", mx)
	}
	h := make([]byte, indexHeaderSize)
	ne.PutUint32(h[0:], indexVersion)
	h[12] = 1
	if binary.BigEndian.Uint32(f.b[0:]) == MagicBigEndian {
		h[13] = 1
	}
	sz := ps
	if ps == MaxPageSize {
		sz = 1
	}
	ne.PutUint16(h[14:], uint16(sz))
	ne.PutUint32(h[16:], uint32(mx))
	ne.PutUint32(h[20:], last.Commit)
	ne.PutUint32(h[24:], last.Checksum1)
	ne.PutUint32(h[28:], last.Checksum2)
	copy(h[32:40], f.b[16:24])
	s1, s2 := Checksum(nativeBigEndian, 0, 0, h[:40])
	ne.PutUint32(h[40:], s1)
	ne.PutUint32(h[44:], s2)
	shm := &memFile{}
	shm.WriteAt(h, 0)
	shm.WriteAt(h, indexHeaderSize)
	for i := range mx {
		var b [4]byte
		ne.PutUint32(b[:], ParseFrameHeader(f.b[FrameOffset(ps, int64(i)):]).Pgno)
		shm.WriteAt(b[:], indexPgnoOffset(i))
	}
	return shm
}

// indexedPair is a WAL polled by the checksum path and the wal-index path.
type indexedPair struct {
	t          *testing.T
	f          *memFile
	w          *walWriter
	slow, fast *Capture
	ss, fs     *recSink
}

func newIndexedPair(t *testing.T, ps uint32, be bool) *indexedPair {
	p := &indexedPair{t: t, f: &memFile{}, ss: &recSink{}, fs: &recSink{}}
	p.w = newWALWriter(t, p.f, ps, be)
	p.slow, p.fast = NewCapture(p.ss), NewCapture(p.fs)
	p.slow.MergePolls, p.fast.MergePolls = true, true
	p.fast.indexMin = 1
	return p
}

// poll polls both, the wal-index path with shm, and requires the same
// database from both.
func (p *indexedPair) poll(shm *memFile, when string) {
	p.t.Helper()
	if err := p.slow.Poll(p.f, p.f.Size()); err != nil {
		p.t.Fatalf("%s: checksum path: %v", when, err)
	}
	if err := p.fast.PollIndexed(p.f, shm, p.f.Size()); err != nil {
		p.t.Fatalf("%s: wal-index path: %v", when, err)
	}
	var a, b []byte
	for _, g := range p.ss.txns {
		a = apply(a, g)
	}
	for _, g := range p.fs.txns {
		b = apply(b, g)
	}
	if !bytes.Equal(a, b) {
		p.t.Fatalf("%s: the two paths captured different databases", when)
	}
	_, want := refParse(p.f.b)
	diffIndex(p.t, when+" (wal-index path)", p.fast.Committed(), want)
}

// commits appends n one-frame commits over pages 1..4 and a growing page.
func (p *indexedPair) commits(n int) {
	for i := range n {
		pg := uint32(1 + i%4)
		if i%7 == 0 {
			pg = uint32(5 + p.w.n)
		}
		p.w.frame(pg, uint32(5+p.w.n), p.w.page(int(p.w.n)))
	}
}

// TestIndexedTakesFrames: a wal-index that describes the WAL is used across
// its 32 KiB blocks (5,000 frames), in both checksum byte orders, and frames
// after its last commit are validated from the file.
func TestIndexedTakesFrames(t *testing.T) {
	for _, be := range []bool{false, true} {
		p := newIndexedPair(t, 512, be)
		p.w.header()
		p.commits(5000)
		p.poll(indexOf(t, p.f, 512, 5000), "5000 commits")
		if st := p.fast.IndexStats(); st.Frames != 5000 || st.Refused != 0 {
			t.Fatalf("stats %+v: want 5000 frames taken, none refused", st)
		}
		// A stale wal-index: it names 5,100 of 5,300 frames; the
		// rest are read.
		p.commits(300)
		p.poll(indexOf(t, p.f, 512, 5100), "stale wal-index")
		if st := p.fast.IndexStats(); st.Frames != 5100 || st.Polls != 2 {
			t.Fatalf("stats %+v: want 5100 frames taken in 2 polls", st)
		}
		if got, want := p.fast.Committed().End, FrameOffset(512, 5300); got != want {
			t.Fatalf("committed end %d, want %d (the frames after the wal-index's last)", got, want)
		}
	}
}

// TestIndexedRefusesMismatch: a wal-index that is not SQLite's current one
// for this WAL is not used, and one that claims this generation but
// disagrees with the file stops the capture using any until the WAL goes
// away. What is captured is the same as without a wal-index.
func TestIndexedRefusesMismatch(t *testing.T) {
	ne := binary.NativeEndian
	resum := func(shm *memFile) {
		h := shm.b[:indexHeaderSize]
		s1, s2 := Checksum(nativeBigEndian, 0, 0, h[:40])
		ne.PutUint32(h[40:], s1)
		ne.PutUint32(h[44:], s2)
		copy(shm.b[indexHeaderSize:], h)
	}
	cases := []struct {
		name    string
		tamper  func(shm *memFile)
		refused bool
	}{
		{"copies differ", func(shm *memFile) { shm.b[indexHeaderSize+16]++ }, false},
		{"header checksum", func(shm *memFile) { shm.b[40]++; shm.b[indexHeaderSize+40]++ }, false},
		{"not initialised", func(shm *memFile) { shm.b[12] = 0; resum(shm) }, false},
		{"other generation", func(shm *memFile) { shm.b[32]++; resum(shm) }, false},
		{"other page size", func(shm *memFile) { ne.PutUint16(shm.b[14:], 1024); resum(shm) }, false},
		{"last frame checksum", func(shm *memFile) { shm.b[24]++; resum(shm) }, true},
		{"database size", func(shm *memFile) { shm.b[20]++; resum(shm) }, true},
		{"not a commit frame", func(shm *memFile) { ne.PutUint32(shm.b[16:], 99); resum(shm) }, true},
		{"page of a newest frame", func(shm *memFile) {
			off := indexPgnoOffset(97) // page 2 of the last 4-page cycle
			ne.PutUint32(shm.b[off:], ne.Uint32(shm.b[off:])+1)
		}, true},
		{"page zero", func(shm *memFile) { ne.PutUint32(shm.b[indexPgnoOffset(3):], 0) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newIndexedPair(t, 512, false)
			p.w.header()
			p.commits(100)
			shm := indexOf(t, p.f, 512, 100)
			tc.tamper(shm)
			p.poll(shm, "tampered wal-index")
			st := p.fast.IndexStats()
			if st.Frames != 0 || (st.Refused == 1) != tc.refused {
				t.Fatalf("stats %+v: want no frames taken, refused %v", st, tc.refused)
			}
			p.commits(50)
			p.poll(indexOf(t, p.f, 512, 150), "a good wal-index after")
			if st := p.fast.IndexStats(); tc.refused && st.Frames != 0 || !tc.refused && st.Frames != 50 {
				t.Fatalf("stats %+v after a good wal-index (refused before: %v)", st, tc.refused)
			}
			p.fast.Reset()
			p.slow.Reset()
			p.poll(indexOf(t, p.f, 512, 150), "after the WAL went away and came back")
			if st := p.fast.IndexStats(); st.Polls == 0 {
				t.Fatalf("stats %+v: the wal-index is used again after Reset", st)
			}
		})
	}
}

// TestIndexedZeroedCommit: SQLite 3.40 can leave a commit frame with zero
// salts and checksums (a savepoint rollback made it forget the checksum
// rewrite it owed, doc.go). Its connections treat the transaction as
// committed, and the wal-index says so; the checksum path cannot see it until
// the WAL restarts, the wal-index path takes it, with the zeroed frame's pages.
func TestIndexedZeroedCommit(t *testing.T) {
	p := newIndexedPair(t, 512, false)
	p.w.header()
	p.commits(40)
	p.w.pending(3, 0, p.w.page(100))
	p.w.pending(2, 60, p.w.page(101))
	if err := p.fast.PollIndexed(p.f, indexOf(t, p.f, 512, 42), p.f.Size()); err != nil {
		t.Fatal(err)
	}
	if err := p.slow.Poll(p.f, p.f.Size()); err != nil {
		t.Fatal(err)
	}
	if got, want := p.slow.Committed().End, FrameOffset(512, 40); got != want {
		t.Fatalf("checksum path: committed end %d, want %d (it stops at the zeroed commit)", got, want)
	}
	idx := p.fast.Committed()
	if got, want := idx.End, FrameOffset(512, 42); got != want || idx.DBSize != 60 {
		t.Fatalf("wal-index path: committed end %d size %d, want %d and 60", got, idx.DBSize, want)
	}
	last := p.fs.txns[len(p.fs.txns)-1]
	if !bytes.Equal(last.data[3], p.w.page(100)) || !bytes.Equal(last.data[2], p.w.page(101)) {
		t.Fatal("wal-index path: the zeroed frames' pages were not captured")
	}
	if st := p.fast.IndexStats(); st.Frames != 42 || st.Refused != 0 {
		t.Fatalf("stats %+v: want 42 frames taken, none refused", st)
	}
}
