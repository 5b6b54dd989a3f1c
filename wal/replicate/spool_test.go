package replicate

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/superfly/ltx"
)

// rawRecord builds a record payload for pages (pgno -> fill byte).
func rawRecord(t *testing.T, pageSize, commit uint32, pre, post ltx.Checksum, pages map[uint32]byte, order []uint32) []byte {
	t.Helper()
	b := appendRawHeader(nil, rawTxn{PageSize: pageSize, Commit: commit, Timestamp: 1700000000000, Pre: pre})
	for _, pgno := range order {
		b = binary.BigEndian.AppendUint32(b, pgno)
		b = append(b, bytes.Repeat([]byte{pages[pgno]}, int(pageSize))...)
	}
	setRawPost(b, post, uint32(len(order)))
	return b
}

func TestSegmentRecordsAndTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0000000000000001.seg")
	var seg []byte
	for txid := uint64(1); txid <= 3; txid++ {
		payload := rawRecord(t, 512, 2, 0, ltx.ChecksumFlag|ltx.Checksum(txid), map[uint32]byte{1: byte(txid), 2: 9}, []uint32{1, 2})
		seg = append(seg, appendRecord(nil, txid, payload)...)
	}
	full := len(seg)
	seg = append(seg, appendRecord(nil, 4, []byte("torn"))[:10]...) // walfs died mid-append
	if err := os.WriteFile(path, seg, 0o600); err != nil {
		t.Fatal(err)
	}
	recs, end, err := readRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), 3; got != want {
		t.Fatalf("records: got %d, want %d", got, want)
	}
	if got, want := end, int64(full); got != want {
		t.Fatalf("valid end: got %d, want %d", got, want)
	}
	f, _ := os.Open(path)
	defer f.Close()
	h, err := readRawHeader(f, recs[2])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Post, ltx.ChecksumFlag|3; got != want {
		t.Fatalf("post-apply of txid 3: got %v, want %v", got, want)
	}
	// A flipped payload byte fails the record CRC and ends the scan there.
	seg[recordHeaderSize+40] ^= 0xff
	os.WriteFile(path, seg, 0o600)
	if recs, _, _ := readRecords(path); len(recs) != 0 {
		t.Fatalf("corrupt first record: got %d records, want 0", len(recs))
	}
}

// The newest image of a page wins, staged on disk (a temp dir) or in memory
// (where it overwrites the older one in place).
func TestMergeRecordsLatestPageWins(t *testing.T) {
	t.Run("disk", func(t *testing.T) { testMergeLatestPageWins(t, true) })
	t.Run("memory", func(t *testing.T) { testMergeLatestPageWins(t, false) })
}

func testMergeLatestPageWins(t *testing.T, onDisk bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	pre := ltx.ChecksumFlag | 0x1111
	var seg []byte
	seg = append(seg, appendRecord(nil, 5, rawRecord(t, 512, 3, pre, ltx.ChecksumFlag|0x2222, map[uint32]byte{1: 1, 3: 3}, []uint32{1, 3}))...)
	seg = append(seg, appendRecord(nil, 6, rawRecord(t, 512, 2, ltx.ChecksumFlag|0x2222, ltx.ChecksumFlag|0x3333, map[uint32]byte{1: 7, 2: 8}, []uint32{1, 2}))...)
	os.WriteFile(path, seg, 0o600)
	recs, _, err := readRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	var in []spoolRecord
	for _, r := range recs {
		in = append(in, spoolRecord{f: f, record: r})
	}
	var out bytes.Buffer
	stageDir := ""
	if onDisk {
		stageDir = dir
	}
	hdr, trailer, err := mergeRecords(in, &out, stageDir)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.MinTXID != 5 || hdr.MaxTXID != 6 || hdr.Commit != 2 || hdr.PreApplyChecksum != pre {
		t.Fatalf("header: %+v", hdr)
	}
	if got, want := trailer.PostApplyChecksum, ltx.ChecksumFlag|0x3333; got != want {
		t.Fatalf("post-apply: got %v, want %v", got, want)
	}
	dec := ltx.NewDecoder(&out)
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	got := map[uint32]byte{}
	data := make([]byte, 512)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, data); err != nil {
			break
		}
		got[ph.Pgno] = data[0]
	}
	// Page 3 is past the final commit size (the database shrank): dropped.
	if want := map[uint32]byte{1: 7, 2: 8}; len(got) != len(want) || got[1] != 7 || got[2] != 8 {
		t.Fatalf("pages: got %v, want %v", got, want)
	}
}

func TestPageSumsRevert(t *testing.T) {
	p := newPageSums(512)
	a, b := bytes.Repeat([]byte{1}, 512), bytes.Repeat([]byte{2}, 512)
	p.set(1, a)
	p.set(2, b)
	before := p.checksum()
	u := p.begin()
	p.truncate(1)
	p.set(1, b)
	p.set(3, a)
	if p.checksum() == before {
		t.Fatal("checksum did not change")
	}
	p.revert(u)
	if got := p.checksum(); got != before {
		t.Fatalf("after revert: got %v, want %v", got, before)
	}
	// The incremental sum equals a fresh computation.
	q := newPageSums(512)
	q.set(1, a)
	q.set(2, b)
	if q.checksum() != p.checksum() {
		t.Fatal("incremental checksum differs from a fresh one")
	}
}

// appendRecord frames payload as a record in buf, as spoolWriter does.
func appendRecord(buf []byte, txid uint64, payload []byte) []byte {
	buf = append(buf, recordMagic...)
	buf = binary.BigEndian.AppendUint64(buf, txid)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(payload, crcTable))
	return append(buf, payload...)
}
