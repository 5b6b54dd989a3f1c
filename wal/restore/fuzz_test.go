package restore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/superfly/ltx"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzDecodeLTX from the fixtures")

// sizedPages is a pageFile that remembers only extents, so arbitrary page
// numbers cost no memory.
type sizedPages struct {
	written int64 // end of the furthest write
	size    int64 // after the last Truncate
}

func (p *sizedPages) WriteAt(b []byte, off int64) (int, error) {
	p.written = max(p.written, off+int64(len(b)))
	return len(b), nil
}

func (p *sizedPages) Truncate(size int64) error { p.size = size; return nil }

// fuzzSeeds are well-formed and damaged LTX files.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	m := newModel(512)
	m.txs(6)
	seeds := map[string][]byte{
		"snapshot":     m.encode(tb, 1, 4, nil),
		"incremental":  m.encode(tb, 3, 6, nil),
		"single":       m.encode(tb, 5, 5, nil),
		"header-only":  m.encode(tb, 1, 4, nil)[:ltx.HeaderSize],
		"truncated":    m.encode(tb, 1, 4, nil)[:300],
		"bad-magic":    append([]byte("LTX0"), m.encode(tb, 2, 2, nil)[4:]...),
		"huge-frame":   m.encode(tb, 2, 2, nil),
		"bit-flip":     m.encode(tb, 3, 6, nil),
		"no-checksum":  nil,
		"empty":        {},
		"wrong-commit": m.encode(tb, 2, 3, nil),
	}
	// Pages past the commit size (the encoder refuses to write that).
	binary.BigEndian.PutUint32(seeds["wrong-commit"][12:], 1)
	// A page frame claiming a 4 GiB compressed block.
	binary.BigEndian.PutUint32(seeds["huge-frame"][ltx.HeaderSize+ltx.PageHeaderSize:], 0xfffffff0)
	seeds["bit-flip"][len(seeds["bit-flip"])/2] ^= 0x08
	lm := newModel(1024)
	lm.noChecksum = true
	lm.txs(3)
	seeds["no-checksum"] = lm.encode(tb, 1, 3, nil)
	return seeds
}

// FuzzDecodeLTX feeds arbitrary bytes to the decode-and-apply path restore
// uses for every downloaded object. It must never panic, every failure must
// be ErrCorrupt, and a success must describe a consistent file.
func FuzzDecodeLTX(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var pages sizedPages
		got, err := applyLTX(bytes.NewReader(b), &pages, expect{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		h := got.header
		if err := h.Validate(); err != nil {
			t.Fatalf("applied a file with an invalid header: %v", err)
		}
		end := int64(h.Commit) * int64(h.PageSize)
		if pages.written > end || pages.size != end {
			t.Fatalf("wrote up to %d, truncated to %d; commit size is %d", pages.written, pages.size, end)
		}
	})
}

// TestFuzzSeedsCheckedIn keeps testdata/fuzz/FuzzDecodeLTX in step with
// fuzzSeeds; run with -update-fuzz-seeds to rewrite it.
func TestFuzzSeedsCheckedIn(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeLTX")
	for name, b := range fuzzSeeds(t) {
		path := filepath.Join(dir, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if *updateFuzzSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestFuzzSeedsCheckedIn -update-fuzz-seeds)", err)
		}
		if string(got) != want {
			t.Errorf("%s is out of date (run go test -run TestFuzzSeedsCheckedIn -update-fuzz-seeds)", path)
		}
	}
}

func TestApplyLTXReadSizes(t *testing.T) {
	seeds := fuzzSeeds(t)
	for _, name := range []string{"snapshot", "incremental", "no-checksum"} {
		for _, r := range []func([]byte) io.Reader{
			func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
			func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		} {
			var pages sizedPages
			if _, err := applyLTX(r(seeds[name]), &pages, expect{}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	var pages sizedPages
	_, err := applyLTX(bytes.NewReader(seeds["huge-frame"]), &pages, expect{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "compressed block") {
		t.Errorf("huge frame: err = %v, want ErrCorrupt about the block size", err)
	}
}
