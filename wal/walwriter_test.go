package wal

import (
	"encoding/binary"
	"testing"
)

// walFile is what walWriter writes to.
type walFile interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Size() int64
}

// walWriter writes a WAL the way SQLite's wal.c does: the header in one
// write, each frame as a 24-byte header write then a page write, in-place page
// overwrites within an open transaction followed by header-only checksum
// rewrites (walRewriteChecksums), rollback by rewinding, restart by a new
// header at offset 0. Like SQLite, it keeps the running checksum in memory,
// so frames appended after an in-place overwrite carry checksums that only
// validate once the rewrite has run.
type walWriter struct {
	t        testing.TB
	f        walFile
	ps       uint32
	be       bool
	seq      uint32
	salt1    uint32
	salt2    uint32
	ck       [2]uint32 // running checksum (SQLite's in-memory copy)
	n        int64     // frames written in this generation
	split    func(off int64, n int) []int
	afterOne func(off int64, n int) // called after every write() call
}

func newWALWriter(t testing.TB, f walFile, ps uint32, be bool) *walWriter {
	return &walWriter{t: t, f: f, ps: ps, be: be, salt1: 0x1234, salt2: 0x9abc0000 + ps}
}

func (w *walWriter) write(off int64, b []byte) {
	w.t.Helper()
	parts := []int{len(b)}
	if w.split != nil {
		parts = w.split(off, len(b))
	}
	for _, n := range parts {
		if _, err := w.f.WriteAt(b[:n], off); err != nil {
			w.t.Fatal(err)
		}
		if w.afterOne != nil {
			w.afterOne(off, n)
		}
		off += int64(n)
		b = b[n:]
	}
}

func (w *walWriter) magic() uint32 {
	if w.be {
		return MagicBigEndian
	}
	return MagicLittleEndian
}

// header writes a WAL header for a new generation.
func (w *walWriter) header() {
	w.t.Helper()
	h := Header{Magic: w.magic(), Version: Version, PageSize: w.ps, CheckpointSeq: w.seq,
		Salt1: w.salt1, Salt2: w.salt2}.Seal()
	b, _ := h.AppendBinary(nil)
	w.write(0, b)
	w.ck = [2]uint32{h.Checksum1, h.Checksum2}
	w.n = 0
}

// restart begins the next generation, as SQLite does after a checkpoint.
func (w *walWriter) restart() {
	w.t.Helper()
	w.seq++
	w.salt1++
	w.salt2 = w.salt2*1103515245 + 12345
	w.header()
}

func (w *walWriter) frameHeader(pgno, commit uint32, page []byte, ck [2]uint32) ([]byte, [2]uint32) {
	var h [8]byte
	binary.BigEndian.PutUint32(h[0:], pgno)
	binary.BigEndian.PutUint32(h[4:], commit)
	ck[0], ck[1] = Checksum(w.be, ck[0], ck[1], h[:])
	ck[0], ck[1] = Checksum(w.be, ck[0], ck[1], page)
	b, _ := FrameHeader{Pgno: pgno, Commit: commit, Salt1: w.salt1, Salt2: w.salt2,
		Checksum1: ck[0], Checksum2: ck[1]}.AppendBinary(nil)
	return b, ck
}

// frame appends one frame: header write, then page write.
func (w *walWriter) frame(pgno, commit uint32, page []byte) {
	w.t.Helper()
	hdr, ck := w.frameHeader(pgno, commit, page, w.ck)
	off := FrameOffset(w.ps, w.n)
	w.write(off, hdr)
	w.write(off+FrameHeaderSize, page)
	w.ck = ck
	w.n++
}

// pending appends one frame the way SQLite does while a checksum rewrite is
// pending (wal.c walEncodeFrame with iReCksum set): page number and commit
// field, salts and checksums zero, running checksum left as it was.
func (w *walWriter) pending(pgno, commit uint32, page []byte) {
	w.t.Helper()
	b, _ := FrameHeader{Pgno: pgno, Commit: commit}.AppendBinary(nil)
	off := FrameOffset(w.ps, w.n)
	w.write(off, b)
	w.write(off+FrameHeaderSize, page)
	w.n++
}

// overwrite replaces the page of frame i in place (the cache-spill case),
// leaving its header and the running checksum stale.
func (w *walWriter) overwrite(i int64, page []byte) {
	w.t.Helper()
	w.write(FrameOffset(w.ps, i)+FrameHeaderSize, page)
}

// storedCk returns the checksum stored in frame i-1 (the header's for i == 0).
func (w *walWriter) storedCk(i int64) [2]uint32 {
	w.t.Helper()
	off, at := int64(24), int64(0)
	if i > 0 {
		off, at = 16, FrameOffset(w.ps, i-1)
	}
	var b [8]byte
	if _, err := w.f.ReadAt(b[:], at+off); err != nil {
		w.t.Fatal(err)
	}
	return [2]uint32{binary.BigEndian.Uint32(b[:]), binary.BigEndian.Uint32(b[4:])}
}

// rewriteChecksums recomputes the checksums of frames from..n-1 from the file
// and rewrites their 24-byte headers one by one, like walRewriteChecksums:
// the chain starts from the checksum stored in frame from-1 (or the header),
// which is (0, 0) if that frame is a pending one. step, when set, runs after
// each header rewrite.
func (w *walWriter) rewriteChecksums(from int64, step func(i int64)) {
	w.t.Helper()
	ck := w.storedCk(from)
	buf := make([]byte, FrameHeaderSize+int(w.ps))
	for i := from; i < w.n; i++ {
		off := FrameOffset(w.ps, i)
		if _, err := w.f.ReadAt(buf, off); err != nil {
			w.t.Fatal(err)
		}
		fh := ParseFrameHeader(buf)
		var hdr []byte
		hdr, ck = w.frameHeader(fh.Pgno, fh.Commit, buf[FrameHeaderSize:], ck)
		w.write(off, hdr)
		if step != nil {
			step(i)
		}
	}
	w.ck = ck
}

// rollback forgets frames from i on: the next frame is written at frame i.
func (w *walWriter) rollback(i int64) {
	w.t.Helper()
	w.n = i
	w.ck = w.storedCk(i)
}

// page returns a page filled from seed.
func (w *walWriter) page(seed int) []byte {
	p := make([]byte, w.ps)
	x := uint32(seed)*2654435761 + 1
	for i := range p {
		x = x*1664525 + 1013904223
		p[i] = byte(x >> 24)
	}
	return p
}
