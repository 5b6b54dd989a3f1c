package restore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
)

// An object's reader follows its temporary file as the download writes it,
// ends where the download ended, and fails with the download's error.
func TestObjectReaderFollowsDownload(t *testing.T) {
	for _, fail := range []bool{false, true} {
		o := newObject(s3backend.FileInfo{Level: 0, MinTXID: 2, MaxTXID: 3}, t.TempDir(), 0)
		f, err := os.Create(o.path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := o.reader()
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("0123456789"), 10000)
		type result struct {
			got []byte
			err error
		}
		done := make(chan result)
		go func() {
			got, err := io.ReadAll(r)
			done <- result{got, err}
		}()
		for chunk := range slices.Chunk(want, 777) {
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
			o.grew(0, int64(len(chunk)))
		}
		errBroken := errors.New("broken")
		if fail {
			o.finish(errBroken)
		} else {
			o.finish(nil)
		}
		res := <-done
		r.Close()
		f.Close()
		switch {
		case fail && !errors.Is(res.err, errBroken):
			t.Errorf("failed download: reader error %v, want %v", res.err, errBroken)
		case !fail && (res.err != nil || !bytes.Equal(res.got, want)):
			t.Errorf("reader got %d bytes, %v; want %d bytes", len(res.got), res.err, len(want))
		}
	}
}

// A large object downloads as several ranged GETs at once; each part that
// breaks resumes from where it stopped.
func TestRestoreDownloadsLargeObjectInParts(t *testing.T) {
	m := newModel(4096)
	m.txs(30)
	st := memstore.New()
	snap := m.putSnapshot(t, st, "", 30)
	k := s3backend.Key(snap)
	defer func(old int64) { partSize = old }(partSize)
	partSize = (snap.Size + 2) / 3

	// The first open is MakePlan's header read; then the three parts'
	// first reads break after b bytes.
	b := snap.Size / 10
	f := breakOpens(st, k, 4, b)
	out := filepath.Join(t.TempDir(), "db")
	opts := restoreOpts()
	opts.Parallelism = 3
	if _, err := Restore(context.Background(), f, "", out, opts); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, m, out, 30)
	// Every part was opened at its start; the breaks (which hit whichever
	// opens come first) were resumed inside a part, never from its start.
	opens := openOffsets(f, k)
	starts := []int64{0, partSize, 2 * partSize}
	resumed := 0
	for _, off := range opens[1:] {
		switch {
		case slices.Contains(starts, off):
		case off%partSize == b%partSize || off%partSize == (2*b)%partSize:
			resumed++
		default:
			t.Errorf("open at %d: neither a part's start nor where a break left it", off)
		}
	}
	for _, start := range starts {
		if !slices.Contains(opens, start) {
			t.Errorf("part at %d never opened (opens %v)", start, opens)
		}
	}
	if resumed == 0 {
		t.Errorf("no part resumed (opens %v)", opens)
	}
}
