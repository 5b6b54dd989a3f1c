package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend/memstore"
)

func init() { retryBackoff = time.Millisecond }

// layeredReplica stores a realistic replica of m (40 transactions): an old
// and a newer snapshot, L0 files for every TXID, L1 and L2 compactions.
func layeredReplica(t *testing.T, m *model, db string) *memstore.Store {
	t.Helper()
	st := memstore.New()
	m.putSnapshot(t, st, db, 1)
	m.putSnapshot(t, st, db, 20)
	m.putL0(t, st, db, 2, 40)
	for from := uint64(2); from+4 <= 40; from += 5 {
		m.put(t, st, db, 1, from, from+4)
	}
	m.put(t, st, db, 2, 2, 26)
	return st
}

// restoreOpts are options for synthetic fixtures, whose pages are not a
// SQLite database.
func restoreOpts() Options { return Options{IntegrityCheck: IntegrityNone} }

// checkOutput checks the restored file equals the model at txid and that
// nothing else was left in dir.
func checkRestored(t *testing.T, m *model, out string, txid uint64) {
	t.Helper()
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := m.image(txid); !bytes.Equal(got, want) {
		t.Fatalf("restored database (%d bytes) differs from the state at TXID %d (%d bytes)", len(got), txid, len(want))
	}
	checkOnly(t, filepath.Dir(out), filepath.Base(out))
}

// checkOnly fails unless dir holds exactly names.
func checkOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("directory holds %q, want %q", got, names)
	}
}

func TestRestoreTargets(t *testing.T) {
	m := newModel(1024)
	m.txs(40)
	st := layeredReplica(t, m, "app.db")
	tests := []struct {
		name   string
		target Target
		txid   uint64
	}{
		{"latest", Target{}, 40},
		{"TXID on a snapshot", Target{TXID: 20}, 20},
		{"TXID between compactions", Target{TXID: 13}, 13},
		{"TXID past the newer snapshot", Target{TXID: 23}, 23},
		{"timestamp", Target{Timestamp: m.times[33].Add(time.Second)}, 33},
		{"TXID 1", Target{TXID: 1}, 1},
	}
	for _, tt := range tests {
		for _, par := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/parallelism=%d", tt.name, par), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "app.db")
				opts := restoreOpts()
				opts.Target, opts.Parallelism = tt.target, par
				res, err := Restore(context.Background(), st, "app.db", out, opts)
				if err != nil {
					t.Fatal(err)
				}
				if res.Plan.TXID != tt.txid {
					t.Fatalf("restored TXID %d, want %d", res.Plan.TXID, tt.txid)
				}
				checkRestored(t, m, out, tt.txid)
				if !res.Verified || ltx.Checksum(res.Checksum) != m.checksum(tt.txid) {
					t.Errorf("Verified %v, Checksum %016x; want true, %s", res.Verified, res.Checksum, m.checksum(tt.txid))
				}
			})
		}
	}
}

func TestRestoreLatestPlanShape(t *testing.T) {
	m := newModel(1024)
	m.txs(40)
	st := layeredReplica(t, m, "app.db")
	p, err := MakePlan(context.Background(), st, "app.db", Target{})
	if err != nil {
		t.Fatal(err)
	}
	// Newest snapshot 1-20, then the L2 2-26 (overlapping, reaches furthest),
	// then L1 27-31, 32-36, then L0 37..40.
	want := strings.Join([]string{
		key("app.db", 9, 1, 20), key("app.db", 2, 2, 26), key("app.db", 1, 27, 31), key("app.db", 1, 32, 36),
		key("app.db", 0, 37, 37), key("app.db", 0, 38, 38), key("app.db", 0, 39, 39), key("app.db", 0, 40, 40),
	}, " ")
	if got := planKeys(p); got != want {
		t.Errorf("plan\n got  %s\n want %s", got, want)
	}
}

func TestRestoreShrinkAndGrow(t *testing.T) {
	m := newModel(512)
	m.tx(10)
	m.tx(10, 3, 9)
	m.tx(4, 2) // shrink: pages 5..10 dropped
	m.tx(7, 1) // grow again: 5..7 rewritten
	m.tx(7, 6)
	st := memstore.New()
	m.putSnapshot(t, st, "", 1)
	m.putL0(t, st, "", 2, 5)
	m.put(t, st, "", 1, 2, 4)
	for txid := uint64(1); txid <= 5; txid++ {
		out := filepath.Join(t.TempDir(), "db")
		opts := restoreOpts()
		opts.Target.TXID = txid
		if _, err := Restore(context.Background(), st, "", out, opts); err != nil {
			t.Fatalf("TXID %d: %v", txid, err)
		}
		checkRestored(t, m, out, txid)
	}
}

func TestRestoreLitestreamNoChecksum(t *testing.T) {
	m := newModel(4096)
	m.noChecksum = true
	m.txs(6)
	st := memstore.New()
	m.putL0(t, st, "", 1, 6) // Litestream: L0 1-1 is a full image, no snapshot yet
	out := filepath.Join(t.TempDir(), "db")
	res, err := Restore(context.Background(), st, "", out, restoreOpts())
	if err != nil {
		t.Fatal(err)
	}
	checkRestored(t, m, out, 6)
	if res.Verified {
		t.Error("Verified = true for files without checksums")
	}
}

func TestRestoreProgress(t *testing.T) {
	m := newModel(512)
	m.txs(20)
	st := memstore.New()
	m.putSnapshot(t, st, "", 1)
	m.putL0(t, st, "", 2, 20)
	var last Progress
	calls := 0
	opts := restoreOpts()
	opts.Parallelism = 4
	opts.Progress = func(p Progress) { calls++; last = p } // serialized by Restore
	res, err := Restore(context.Background(), st, "", filepath.Join(t.TempDir(), "db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := Progress{Files: 20, FilesDone: 20, Bytes: res.Plan.Bytes, BytesDone: res.Plan.Bytes}
	if last != want || calls < 20 {
		t.Errorf("last progress %+v after %d calls, want %+v", last, calls, want)
	}
}

func TestRestoreBadOptions(t *testing.T) {
	_, err := Restore(context.Background(), memstore.New(), "", filepath.Join(t.TempDir(), "db"), Options{IntegrityCheck: "deep"})
	if err == nil || !strings.Contains(err.Error(), `"deep"`) {
		t.Fatalf("err = %v, want an unknown integrity check error", err)
	}
}

func TestRestoreNoBackups(t *testing.T) {
	dir := t.TempDir()
	_, err := Restore(context.Background(), memstore.New(), "x.db", filepath.Join(dir, "db"), restoreOpts())
	if !errors.Is(err, ErrNoBackups) {
		t.Fatalf("err = %v, want ErrNoBackups", err)
	}
	checkOnly(t, dir)
}

func TestChecksumPagesSkipsLockPage(t *testing.T) {
	const pageSize, nPages, lock = 512, 6, 4
	m := newModel(pageSize)
	m.tx(nPages)
	img := m.image(1)
	want := ltx.ChecksumFlag
	for pgno := uint32(1); pgno <= nPages; pgno++ {
		if pgno != lock {
			want ^= ltx.ChecksumPage(pgno, img[(pgno-1)*pageSize:pgno*pageSize])
		}
	}
	want |= ltx.ChecksumFlag
	got, err := checksumPages(bytes.NewReader(img), pageSize, nPages, lock)
	if err != nil || got != want {
		t.Fatalf("checksum = %s, %v; want %s", got, err, want)
	}
	// Whatever the lock page holds does not count.
	for i := range pageSize {
		img[(lock-1)*pageSize+i] = 0xff
	}
	if got, _ := checksumPages(bytes.NewReader(img), pageSize, nPages, lock); got != want {
		t.Errorf("checksum changed with the lock page content: %s, want %s", got, want)
	}
	// With the lock page past the end, it equals ltx's own whole-file checksum.
	img = m.image(1)
	got, _ = dbChecksum(bytes.NewReader(img), pageSize, nPages)
	if ref, _ := ltx.ChecksumReader(bytes.NewReader(img), pageSize); got != ref {
		t.Errorf("dbChecksum = %s, ltx.ChecksumReader = %s", got, ref)
	}
	if got := snapshotPages(10, 4); got != 9 {
		t.Errorf("snapshotPages(10, lock 4) = %d, want 9", got)
	}
	if got := snapshotPages(3, 4); got != 3 {
		t.Errorf("snapshotPages(3, lock 4) = %d, want 3", got)
	}
}

// The checksum pass splits the file into ranges read concurrently; any
// split gives the same checksum, lock page included.
func TestChecksumSplit(t *testing.T) {
	const pageSize, nPages, lock = 512, 1000, 700
	m := newModel(pageSize)
	m.tx(nPages)
	img := m.image(1)
	want, err := checksumSplit(bytes.NewReader(img), pageSize, nPages, lock, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{0, 2, 3, 7, 999, 1000, 5000} {
		if got, err := checksumSplit(bytes.NewReader(img), pageSize, nPages, lock, workers); err != nil || got != want {
			t.Errorf("%d workers: %s, %v; want %s", workers, got, err, want)
		}
	}
	if _, err := checksumSplit(bytes.NewReader(img[:len(img)-1]), pageSize, nPages, lock, 3); err == nil {
		t.Error("short file: no error")
	}
}
