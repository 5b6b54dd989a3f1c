package replicate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/superfly/ltx"
)

// spoolPages appends txid to w with npages pages of pageSize, page i filled
// with byte(txid+i); a non-nil fail stops the build after failAt pages.
func spoolPages(w *spoolWriter, txid uint64, pageSize, npages int, failAt int, fail error) (recordRef, bool, error) {
	h := rawTxn{PageSize: uint32(pageSize), Commit: uint32(npages), Timestamp: 1, Pre: ltx.ChecksumFlag}
	return w.appendTxn(txid, h, func(rec *txnRecord) (ltx.Checksum, error) {
		for i := range npages {
			if fail != nil && i == failAt {
				return 0, fail
			}
			page, err := rec.page(uint32(i + 1))
			if err != nil {
				return 0, err
			}
			for j := range page {
				page[j] = byte(int(txid) + i)
			}
		}
		return ltx.ChecksumFlag | ltx.Checksum(txid), nil
	})
}

// A transaction of any size streams through a buffer bounded by
// recordChunk (a 200 MB one once left two 200 MB buffers behind); batched
// records around it keep their order; a build that fails mid-stream leaves
// no torn record; every record reads back whole.
func TestSpoolWriterStreamsBigRecords(t *testing.T) {
	const pageSize = 4096
	w := newSpoolWriter(spool{dir: t.TempDir()}, "db")
	bound := 2 * recordChunk // a record's last page may make append round up
	want := map[uint64]int{} // txid -> pages
	check := func(what string) {
		t.Helper()
		if c := cap(w.recBuf); c > bound {
			t.Fatalf("%s: spool buffer capacity %d, want at most %d", what, c, bound)
		}
	}
	add := func(txid uint64, npages int) {
		t.Helper()
		if _, _, err := spoolPages(w, txid, pageSize, npages, 0, nil); err != nil {
			t.Fatal(err)
		}
		want[txid] = npages
		check("after txid")
	}
	add(1, 3)
	add(2, 3000) // 12 MB
	w.beginBatch()
	add(3, 2)
	add(4, 1000) // follows 3 in the same batch
	add(5, 1)
	boom := errors.New("read failed")
	if _, _, err := spoolPages(w, 6, pageSize, 2000, 1500, boom); !errors.Is(err, boom) {
		t.Fatalf("failed build: got %v, want %v", err, boom)
	}
	check("after the failed build")
	if _, err := w.endBatch(); err != nil {
		t.Fatal(err)
	}
	add(6, 2) // the TXID the failed one would have had
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.closeSegment(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(w.dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	recs, end, err := readRecords(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(segs[0]); fi.Size() != end {
		t.Fatalf("segment holds %d bytes past its last valid record", fi.Size()-end)
	}
	if len(recs) != len(want) {
		t.Fatalf("records: got %d, want %d", len(recs), len(want))
	}
	f, _ := os.Open(segs[0])
	defer f.Close()
	for i, rec := range recs {
		if rec.TXID != uint64(i+1) {
			t.Fatalf("record %d has txid %d", i, rec.TXID)
		}
		h, err := readRawHeader(f, rec)
		if err != nil {
			t.Fatal(err)
		}
		if h.NPages != uint32(want[rec.TXID]) || h.Post != ltx.ChecksumFlag|ltx.Checksum(rec.TXID) {
			t.Fatalf("txid %d: header %+v", rec.TXID, h)
		}
		n := 0
		err = eachRawPage(f, rec, h, func(pgno uint32, data []byte) error {
			if pgno != uint32(n+1) || !bytes.Equal(data, bytes.Repeat([]byte{byte(int(rec.TXID) + n)}, pageSize)) {
				t.Fatalf("txid %d: page %d (pgno %d) is wrong", rec.TXID, n, pgno)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolSyncedOnlyWhenAsked: spool files are not synced when they are
// written, closed for upload or followed by records (the database holds
// what they hold); sync makes every one durable; the files the uploader
// removes leave the list of unsynced ones; a restart registers what it
// found.
func TestSpoolSyncedOnlyWhenAsked(t *testing.T) {
	const pageSize = 4096
	dir := t.TempDir()
	w := newSpoolWriter(spool{dir: dir}, "db")
	unsynced := func() []string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.Clone(w.unsynced)
	}

	p1 := spoolSnapshot(t, w, 1, pageSize)
	if _, _, err := spoolPages(w, 2, pageSize, 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.closeSegment(); err != nil {
		t.Fatal(err)
	}
	if got, want := unsynced(), []string{p1, w.segmentPath(2)}; !slices.Equal(got, want) {
		t.Fatalf("after a snapshot, a record and the segment's close: unsynced %v, want %v", got, want)
	}
	if _, _, err := spoolPages(w, 3, pageSize, 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p1); err != nil { // uploaded meanwhile: no error
		t.Fatal(err)
	}
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	segDirty, dirDirty := w.segDirty, w.dirDirty
	w.mu.Unlock()
	if got := unsynced(); len(got) != 0 || segDirty || dirDirty {
		t.Fatalf("after sync: unsynced %v, open segment dirty %v, directory dirty %v", got, segDirty, dirDirty)
	}

	// Rotations no one syncs, their files uploaded and removed (remove):
	// the list names none of them.
	if _, err := w.closeSegment(); err != nil {
		t.Fatal(err)
	}
	if err := w.remove(w.segmentPath(3)); err != nil {
		t.Fatal(err)
	}
	for txid := uint64(4); txid < 100; txid++ {
		if _, _, err := spoolPages(w, txid, pageSize, 1, 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := w.closeSegment(); err != nil {
			t.Fatal(err)
		}
		if err := w.remove(w.segmentPath(txid)); err != nil {
			t.Fatal(err)
		}
		if got := unsynced(); len(got) != 0 {
			t.Fatalf("after TXID %d was uploaded and removed: unsynced %v, want none", txid, got)
		}
	}

	// A restart finds files and cannot know they were synced.
	p := spoolSnapshot(t, w, 100, pageSize)
	w2 := newSpoolWriter(spool{dir: dir}, "db")
	if _, _, err := w2.scan(testLogger(t), 2); err != nil { // the segment before it was uploaded
		t.Fatal(err)
	}
	w2.mu.Lock()
	found, dirDirty := slices.Clone(w2.unsynced), w2.dirDirty
	w2.mu.Unlock()
	if !slices.Contains(found, p) || !dirDirty {
		t.Fatalf("scan registered %v as unsynced (directory dirty %v), want the snapshot it found, %s", found, dirDirty, p)
	}
}

// spoolSnapshot spools a one-page snapshot at txid and returns its path.
func spoolSnapshot(t *testing.T, w *spoolWriter, txid uint64, pageSize int) string {
	t.Helper()
	hdr := ltx.Header{Version: ltx.Version, PageSize: uint32(pageSize), Commit: 1, MinTXID: 1, MaxTXID: ltx.TXID(txid), Timestamp: 1}
	path, _, err := w.writeSnapshot(txid, hdr, func(enc *ltx.Encoder) (ltx.Checksum, error) {
		page := make([]byte, pageSize)
		if err := enc.EncodePage(ltx.PageHeader{Pgno: 1}, page); err != nil {
			return 0, err
		}
		return ltx.ChecksumFlag | ltx.ChecksumPage(1, page), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// A power cut may take spool files nothing synced and leave later ones: a
// restart keeps what still follows the replica's position and drops the
// rest, which the uploader could never chain on (it would wait forever).
func TestScanDropsWhatNoLongerChains(t *testing.T) {
	const pageSize = 4096
	build := func(t *testing.T) (*spoolWriter, string) {
		dir := t.TempDir()
		w := newSpoolWriter(spool{dir: dir}, "db")
		for _, seg := range [][]uint64{{1}, {2, 3}, {4}, {5, 6}, {7}, {8}} {
			if seg[0] == 1 || seg[0] == 7 {
				spoolSnapshot(t, w, seg[0], pageSize)
				continue
			}
			for _, txid := range seg {
				if _, _, err := spoolPages(w, txid, pageSize, 1, 0, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.closeSegment(); err != nil {
				t.Fatal(err)
			}
		}
		return w, dir
	}
	for _, tc := range []struct {
		name     string
		lost     []string // spool files the power cut took
		uploaded uint64
		want     []uint64 // first TXIDs of the entries kept
		pos      uint64
	}{
		{"nothing lost", nil, 0, []uint64{1, 2, 4, 5, 7, 8}, 8},
		{"nothing lost, partly uploaded", nil, 3, []uint64{4, 5, 7, 8}, 8},
		{"the first snapshot", []string{"0000000000000001.snap.ltx"}, 0, []uint64{7, 8}, 8},
		{"a segment in the middle", []string{"0000000000000004.seg"}, 0, []uint64{1, 2, 7, 8}, 8},
		{"a segment after the upload", []string{"0000000000000004.seg"}, 3, []uint64{7, 8}, 8},
		{"what was uploaded", []string{"0000000000000001.snap.ltx", "0000000000000002.seg"}, 3, []uint64{4, 5, 7, 8}, 8},
		{"the last snapshot", []string{"0000000000000007.snap.ltx"}, 0, []uint64{1, 2, 4, 5}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir := build(t)
			for _, name := range tc.lost {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			w := newSpoolWriter(spool{dir: dir}, "db")
			entries, pos, err := w.scan(testLogger(t), tc.uploaded)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range entries {
				got = append(got, e.TXID)
			}
			if !slices.Equal(got, tc.want) || pos.TXID != tc.pos {
				t.Fatalf("kept %v at position %d, want %v at %d", got, pos.TXID, tc.want, tc.pos)
			}
			left, err := w.list()
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != len(entries) {
				t.Fatalf("spool holds %v after the scan, want only what it kept", left)
			}
		})
	}
}
