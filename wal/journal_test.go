package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"
)

func readJournalFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/journal/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The fixtures were copied from real SQLite while a transaction that spilled
// its cache was open (testdata/journal/make.py). Expected values were read
// with an independent parser.
func TestReadJournalGolden(t *testing.T) {
	for _, tc := range []struct {
		file  string
		pages []uint32
	}{
		// Synced segments of two records each; the last segment was never
		// synced (zero magic): its pages were not written to the db yet.
		{"spill.journal", []uint32{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		// synchronous=OFF: one segment, record count 0xFFFFFFFF.
		{"nosync.journal", []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := readJournalFixture(t, tc.file)
			j, err := ReadJournal(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if j == nil || j.PageSize != 1024 || j.OrigSize != 16 {
				t.Fatalf("journal = %+v, want page size 1024, original size 16", j)
			}
			if !slices.Equal(j.Pages, tc.pages) {
				t.Fatalf("pages = %v, want %v", j.Pages, tc.pages)
			}
		})
	}
}

func TestReadJournalFinalized(t *testing.T) {
	b := readJournalFixture(t, "spill.journal")
	zeroed := slices.Clone(b)
	copy(zeroed, make([]byte, JournalHeaderSize)) // PERSIST-mode commit
	for name, data := range map[string][]byte{"empty": nil, "zeroed header": zeroed, "short": b[:10]} {
		j, err := ReadJournal(bytes.NewReader(data), int64(len(data)))
		if err != nil || j != nil {
			t.Errorf("%s: got %+v, %v; want no live transaction", name, j, err)
		}
	}
}

func TestReadJournalTruncated(t *testing.T) {
	b := readJournalFixture(t, "nosync.journal")
	cut := b[:512+3*(1024+8)+100] // header, three whole records, part of a fourth
	j, err := ReadJournal(bytes.NewReader(cut), int64(len(cut)))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Pages) != 3 {
		t.Fatalf("pages = %v, want the three whole records", j.Pages)
	}
}

func TestReadJournalBadHeader(t *testing.T) {
	b := slices.Clone(readJournalFixture(t, "spill.journal"))
	binary.BigEndian.PutUint32(b[20:], 100) // sector size not a power of two
	if _, err := ReadJournal(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrBadJournal) {
		t.Fatalf("bad sector size: err = %v, want ErrBadJournal", err)
	}
	b = slices.Clone(readJournalFixture(t, "spill.journal"))
	binary.BigEndian.PutUint32(b[24:], 1000) // not a page size
	if _, err := ReadJournal(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrBadJournal) {
		t.Fatalf("bad page size: err = %v, want ErrBadJournal", err)
	}
}

func TestIsJournalCommit(t *testing.T) {
	b := readJournalFixture(t, "spill.journal")
	for _, tc := range []struct {
		name string
		off  int64
		data []byte
		want bool
	}{
		{"zeroed header", 0, make([]byte, JournalHeaderSize), true},
		{"live header", 0, b[:512], false},
		{"first header of a synced transaction", 0, append(make([]byte, 12), b[12:512]...), false},
		{"zeros elsewhere", 512, make([]byte, JournalHeaderSize), false},
		{"short", 0, make([]byte, 8), false},
	} {
		if got := IsJournalCommit(tc.off, tc.data); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzReadJournal(f *testing.F) {
	for _, name := range []string{"spill.journal", "nosync.journal"} {
		b, err := os.ReadFile("testdata/journal/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ReadJournal(bytes.NewReader(b), int64(len(b)))
		if err != nil || j == nil {
			return
		}
		if !ValidPageSize(j.PageSize) {
			t.Fatalf("page size %d accepted", j.PageSize)
		}
		for i, p := range j.Pages {
			if p == 0 || (i > 0 && p <= j.Pages[i-1]) {
				t.Fatalf("pages not sorted, unique and non-zero: %v", j.Pages)
			}
		}
		if max := len(b) / int(j.PageSize+8); len(j.Pages) > max {
			t.Fatalf("%d pages from %d bytes", len(j.Pages), len(b))
		}
	})
}
