package wal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// rollbackCase is one line of testdata/rollback.py's cases.json.
type rollbackCase struct {
	Name      string `json:"name"`
	Desc      string `json:"desc"`
	Memory    bool   `json:"memory"`
	PageSize  int    `json:"page_size"`
	AutoVac   int    `json:"auto_vacuum"`
	Exclusive bool   `json:"exclusive"`
}

// dbShape is the page size and size in pages of a database image, read as
// the replicator reads them: the in-header size when SQLite trusts it.
func dbShape(b []byte) (pageSize, size uint32) {
	h, ok := ParseDBHeader(b)
	if !ok {
		return 0, 0
	}
	size = uint32(len(b) / int(h.PageSize))
	if h.PageCount > 0 {
		size = h.PageCount
	}
	return h.PageSize, size
}

// changedPages is the byte-level difference of two images of a database
// with the given page size, up to size pages.
func changedPages(before, after []byte, pageSize, size uint32) []uint32 {
	var out []uint32
	for p := uint32(1); p <= size; p++ {
		off := int64(p-1) * int64(pageSize)
		a := after[off : off+int64(pageSize)]
		var b []byte
		if off+int64(pageSize) <= int64(len(before)) {
			b = before[off : off+int64(pageSize)]
		}
		if !bytes.Equal(a, b) {
			out = append(out, p)
		}
	}
	return out
}

// TestRollbackChangesDifferential runs random transactions through real
// SQLite (testdata/rollback.py) and checks that every page whose bytes
// changed is among the pages RollbackChanges names, the unsure ones
// included, and that the original page 1 it reads is the one the file had.
func TestRollbackChangesDifferential(t *testing.T) {
	dbs, txns := "24", "12"
	if testing.Short() {
		dbs = "8"
	}
	dir := t.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "rollback-test-"); err == nil { // fsyncs cost nothing there
		dir = shm
		t.Cleanup(func() { os.RemoveAll(shm) })
	}
	cmd := exec.Command("python3", "testdata/rollback.py", dir, "1", dbs, txns)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testdata/rollback.py: %v\n%s", err, out)
	}
	mf, err := os.Open(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	var cases, all, memorySeen, diffPages, pages, unsure, unsureChanged int
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		var c rollbackCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		read := func(ext string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, c.Name+"."+ext))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		before, after, jb := read("before"), read("after"), read("journal")
		cases++
		j, err := ReadJournal(bytes.NewReader(jb), int64(len(jb)))
		if err != nil {
			t.Fatalf("%s (%s): %v", c.Name, c.Desc, err)
		}
		if j == nil {
			t.Fatalf("%s (%s): no live transaction in the journal", c.Name, c.Desc)
		}
		pageSize, size := dbShape(after)
		ch, err := RollbackChanges(j, bytes.NewReader(jb), bytes.NewReader(after), pageSize, size)
		if err != nil {
			t.Fatalf("%s (%s): %v", c.Name, c.Desc, err)
		}
		if ch.All {
			// Allowed where SQLite cut off the end of the original free
			// list unjournaled (VACUUM, autovacuum) or the page size changed.
			all++
			if beforePageSize, beforeSize := dbShape(before); beforePageSize == pageSize && beforeSize <= size {
				t.Errorf("%s (%s): every page changed, yet neither the page size nor the size went down", c.Name, c.Desc)
			}
			continue
		}
		if c.Memory {
			// A commit the journal never saw changed page 1.
			if bytes.Equal(ch.Page1, before[:pageSize]) {
				t.Errorf("%s (%s): original page 1 does not show the journal-less commit", c.Name, c.Desc)
			}
			memorySeen++
			continue
		}
		if !bytes.Equal(ch.Page1, before[:pageSize]) {
			t.Errorf("%s (%s): original page 1 is not the file's page 1 before the transaction", c.Name, c.Desc)
		}
		diff := changedPages(before, after, pageSize, size)
		diffPages += len(diff)
		pages += len(ch.Pages)
		unsure += len(ch.Unsure)
		var missed []uint32
		for _, p := range diff {
			if _, ok := slices.BinarySearch(ch.Pages, p); ok {
				continue
			}
			if _, ok := slices.BinarySearch(ch.Unsure, p); ok {
				unsureChanged++
				continue
			}
			missed = append(missed, p)
		}
		if len(missed) > 0 {
			t.Errorf("%s (%s, page size %d, auto_vacuum %d, exclusive %v): changed pages %v not named (%d named, %d unsure)",
				c.Name, c.Desc, c.PageSize, c.AutoVac, c.Exclusive, missed, len(ch.Pages), len(ch.Unsure))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases == 0 || memorySeen == 0 || all == 0 || unsureChanged == 0 {
		t.Errorf("the workload missed a case: %d transactions, %d journal-less, %d with every page, %d unsure pages that changed",
			cases, memorySeen, all, unsureChanged)
	}
	t.Logf("%d transactions: %d pages changed; named %d (%.2fx), unsure %d of which %d changed; %d with every page (page size change, shrunk past the free list)",
		cases, diffPages, pages, float64(pages)/float64(max(diffPages, 1)), unsure, unsureChanged, all)
}

// journalBuilder writes a synthetic rollback journal: one synced segment.
type journalBuilder struct {
	pageSize, origSize uint32
	recs               [][]byte
}

func (b *journalBuilder) add(pgno uint32, page []byte) {
	rec := binary.BigEndian.AppendUint32(nil, pgno)
	rec = append(rec, page...)
	rec = binary.BigEndian.AppendUint32(rec, journalChecksum(7, page))
	b.recs = append(b.recs, rec)
}

func (b *journalBuilder) bytes() []byte {
	const sector = 512
	out := make([]byte, sector)
	copy(out, journalMagic[:])
	binary.BigEndian.PutUint32(out[8:], uint32(len(b.recs)))
	binary.BigEndian.PutUint32(out[12:], 7)
	binary.BigEndian.PutUint32(out[16:], b.origSize)
	binary.BigEndian.PutUint32(out[20:], sector)
	binary.BigEndian.PutUint32(out[24:], b.pageSize)
	for _, r := range b.recs {
		out = append(out, r...)
	}
	return out
}

// testDB is a synthetic database image of 512-byte pages.
type testDB [][]byte

func newTestDB(n int) testDB {
	db := make(testDB, n)
	for i := range db {
		db[i] = bytes.Repeat([]byte{byte(i + 1)}, 512)
	}
	copy(db[0], "SQLite format 3\x00")
	binary.BigEndian.PutUint16(db[0][16:], 512)
	binary.BigEndian.PutUint32(db[0][28:], uint32(n))
	return db
}

func (db testDB) clone() testDB {
	out := make(testDB, len(db))
	for i := range db {
		out[i] = slices.Clone(db[i])
	}
	return out
}

// setFreeList makes trunk the only trunk, listing leaves.
func (db testDB) setFreeList(trunk uint32, leaves ...uint32) {
	binary.BigEndian.PutUint32(db[0][32:], trunk)
	binary.BigEndian.PutUint32(db[0][36:], uint32(len(leaves)+1))
	if trunk == 0 {
		binary.BigEndian.PutUint32(db[0][36:], 0)
		return
	}
	t := db[trunk-1]
	clear(t)
	binary.BigEndian.PutUint32(t[4:], uint32(len(leaves)))
	for i, l := range leaves {
		binary.BigEndian.PutUint32(t[8+4*i:], l)
	}
}

func (db testDB) bytes() []byte { return bytes.Join(db, nil) }

func TestRollbackChangesRules(t *testing.T) {
	orig := newTestDB(10)
	orig.setFreeList(5, 6, 7, 8)

	t.Run("reused leaf, new page, unsure leaves", func(t *testing.T) {
		now := orig.clone()
		now = append(now, bytes.Repeat([]byte{0xee}, 512)) // page 11 is new
		binary.BigEndian.PutUint32(now[0][28:], 11)
		now.setFreeList(5, 6, 8) // leaf 7 reused
		now[6][0] = 0xaa
		now[1][0] = 0xbb // page 2 changed, journaled
		jb := journalBuilder{pageSize: 512, origSize: 10}
		jb.add(1, orig[0])
		jb.add(2, orig[1])
		jb.add(5, orig[4])
		jr := jb.bytes()
		j, err := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
		if err != nil {
			t.Fatal(err)
		}
		ch, err := RollbackChanges(j, bytes.NewReader(jr), bytes.NewReader(now.bytes()), 512, 11)
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint32{1, 2, 5, 7, 11}; !slices.Equal(ch.Pages, want) || ch.All {
			t.Errorf("pages = %v (all %v), want %v", ch.Pages, ch.All, want)
		}
		if want := []uint32{6, 8}; !slices.Equal(ch.Unsure, want) {
			t.Errorf("unsure = %v, want %v", ch.Unsure, want)
		}
		if !bytes.Equal(ch.Page1, orig[0]) {
			t.Errorf("page 1 is not the original")
		}
	})

	t.Run("page 1 not journaled: no free-list work", func(t *testing.T) {
		now := orig.clone()
		now[2][0] = 0xcc
		jb := journalBuilder{pageSize: 512, origSize: 10}
		jb.add(3, orig[2])
		jr := jb.bytes()
		j, _ := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
		ch, err := RollbackChanges(j, bytes.NewReader(jr), bytes.NewReader(now.bytes()), 512, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ch.Pages, []uint32{3}) || len(ch.Unsure) != 0 || !bytes.Equal(ch.Page1, orig[0]) {
			t.Errorf("got pages %v unsure %v", ch.Pages, ch.Unsure)
		}
	})

	t.Run("in-header size below the file size", func(t *testing.T) {
		small := orig.clone()
		binary.BigEndian.PutUint32(small[0][28:], 8) // SQLite allocates from page 9 unjournaled
		binary.BigEndian.PutUint32(small[0][92:], binary.BigEndian.Uint32(small[0][24:]))
		now := small.clone()
		binary.BigEndian.PutUint32(now[0][28:], 10)
		jb := journalBuilder{pageSize: 512, origSize: 10}
		jb.add(1, small[0])
		jr := jb.bytes()
		j, _ := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
		ch, err := RollbackChanges(j, bytes.NewReader(jr), bytes.NewReader(now.bytes()), 512, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint32{1, 9, 10}; !slices.Equal(ch.Pages, want) {
			t.Errorf("pages = %v, want %v", ch.Pages, want)
		}
	})

	for name, mutate := range map[string]func(testDB){
		"free list loops":         func(db testDB) { binary.BigEndian.PutUint32(db[4][0:], 5) },
		"trunk past the end":      func(db testDB) { binary.BigEndian.PutUint32(db[0][32:], 40) },
		"leaf count out of range": func(db testDB) { binary.BigEndian.PutUint32(db[4][4:], 1000) },
	} {
		t.Run(name, func(t *testing.T) {
			now := orig.clone()
			mutate(now)
			jb := journalBuilder{pageSize: 512, origSize: 10}
			jb.add(1, orig[0])
			jr := jb.bytes()
			j, _ := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
			ch, err := RollbackChanges(j, bytes.NewReader(jr), bytes.NewReader(now.bytes()), 512, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !ch.All {
				t.Errorf("got pages %v unsure %v, want every page", ch.Pages, ch.Unsure)
			}
		})
	}

	t.Run("page size changed", func(t *testing.T) {
		jb := journalBuilder{pageSize: 1024, origSize: 5}
		jr := jb.bytes()
		j, _ := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
		ch, err := RollbackChanges(j, bytes.NewReader(jr), bytes.NewReader(orig.bytes()), 512, 10)
		if err != nil || !ch.All {
			t.Errorf("got %+v, %v; want every page", ch, err)
		}
	})
}

func TestReadJournalStopsAtStaleRecord(t *testing.T) {
	db := newTestDB(4)
	jb := journalBuilder{pageSize: 512, origSize: 4}
	jb.add(2, db[1])
	jb.add(3, db[2])
	jr := jb.bytes()
	// A record left by an older transaction (another nonce), after a
	// record count that says "to the end of the file".
	binary.BigEndian.PutUint32(jr[8:], 0xFFFFFFFF)
	stale := binary.BigEndian.AppendUint32(nil, 1)
	stale = append(stale, db[0]...)
	stale = binary.BigEndian.AppendUint32(stale, journalChecksum(8, db[0]))
	jr = append(jr, stale...)
	j, err := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{2, 3}; !slices.Equal(j.Pages, want) {
		t.Fatalf("pages = %v, want %v", j.Pages, want)
	}
}

func FuzzRollbackChanges(f *testing.F) {
	orig := newTestDB(10)
	orig.setFreeList(5, 6, 7, 8)
	jb := journalBuilder{pageSize: 512, origSize: 10}
	jb.add(1, orig[0])
	jb.add(5, orig[4])
	f.Add(jb.bytes(), orig.bytes())
	f.Fuzz(func(t *testing.T, jr, db []byte) {
		j, err := ReadJournal(bytes.NewReader(jr), int64(len(jr)))
		if err != nil || j == nil {
			return
		}
		size := uint32(len(db) / int(j.PageSize))
		ch, err := RollbackChanges(j, bytes.NewReader(jr), bytes.NewReader(db), j.PageSize, size)
		if err != nil {
			t.Fatal(err) // readers over whole byte slices never fail
		}
		if ch.All {
			return
		}
		for _, s := range [][]uint32{ch.Pages, ch.Unsure} {
			for i, p := range s {
				if p == 0 || p > size || (i > 0 && p <= s[i-1]) {
					t.Fatalf("pages not sorted, unique and within the database: %v (size %d)", s, size)
				}
			}
		}
		for _, p := range ch.Unsure {
			if _, ok := slices.BinarySearch(ch.Pages, p); ok {
				t.Fatalf("page %d both changed and unsure", p)
			}
		}
	})
}
