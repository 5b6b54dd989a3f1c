package replicate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
