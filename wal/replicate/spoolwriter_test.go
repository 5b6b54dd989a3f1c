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

// TestSnapshotSyncedBeforeRecords: a spooled snapshot is not synced when it
// is written (the app's commit does not wait for it), but before any record
// after it reaches its segment, by a sync of the spool, and again after a
// restart that found it: records never reach the disk ahead of the
// snapshot they chain onto.
func TestSnapshotSyncedBeforeRecords(t *testing.T) {
	const pageSize = 4096
	dir := t.TempDir()
	w := newSpoolWriter(spool{dir: dir}, "db")
	snapshot := func(txid uint64) string {
		t.Helper()
		hdr := ltx.Header{Version: ltx.Version, PageSize: pageSize, Commit: 1, MinTXID: 1, MaxTXID: ltx.TXID(txid), Timestamp: 1}
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
	unsynced := func() []string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.Clone(w.unsynced)
	}

	p1 := snapshot(1)
	if got := unsynced(); !slices.Equal(got, []string{p1}) {
		t.Fatalf("after the snapshot: unsynced %v, want it", got)
	}
	if _, _, err := spoolPages(w, 2, pageSize, 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	if got := unsynced(); len(got) != 0 {
		t.Fatalf("a record was written while the snapshot before it was unsynced: %v", got)
	}

	p3 := snapshot(3) // closes the segment; the next record opens another
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	if got := unsynced(); len(got) != 0 {
		t.Fatalf("after sync: unsynced %v", got)
	}

	// A restart finds the snapshot and cannot know it was synced.
	snapshot(5)
	w2 := newSpoolWriter(spool{dir: dir}, "db")
	if _, _, err := w2.scan(testLogger(t)); err != nil {
		t.Fatal(err)
	}
	w2.mu.Lock()
	found := slices.Clone(w2.unsynced)
	w2.mu.Unlock()
	if !slices.Contains(found, p3) || !slices.Contains(found, w.snapshotPath(5)) {
		t.Fatalf("scan registered %v as unsynced, want the snapshots it found (%s, 5)", found, p3)
	}
	// A snapshot the uploader removed meanwhile is no error.
	if err := os.Remove(p3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := spoolPages(w2, 6, pageSize, 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	w2.mu.Lock()
	left := len(w2.unsynced)
	w2.mu.Unlock()
	if left != 0 {
		t.Fatalf("after a record: %d snapshots still unsynced", left)
	}
}
