package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superfly/ltx"
	"github.com/walfs/walfs/s3backend"
)

func init() { retryBackoff = time.Millisecond }

// layeredReplica stores a realistic replica of m (40 transactions): an old
// and a newer snapshot, L0 files for every TXID, L1 and L2 compactions.
func layeredReplica(t *testing.T, m *model, db string) *memStore {
	t.Helper()
	st := newMemStore()
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
	st := newMemStore()
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
	st := newMemStore()
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

func TestRestoreCorruptObject(t *testing.T) {
	m := newModel(512)
	m.txs(10)
	st := newMemStore()
	m.putSnapshot(t, st, "app.db", 1)
	m.putL0(t, st, "app.db", 2, 10)
	bad := key("app.db", 0, 6, 6)
	o := st.object(bad)
	o.data[ltx.HeaderSize+20] ^= 0x40 // inside the first page frame

	dir := t.TempDir()
	out := filepath.Join(dir, "app.db")
	_, err := Restore(context.Background(), st, "app.db", out, restoreOpts())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v, want ErrCorrupt naming %s", err, bad)
	}
	var oe *ObjectError
	if !errors.As(err, &oe) || oe.Key != bad {
		t.Errorf("err = %#v, want an *ObjectError for %s", err, bad)
	}
	if s3backend.Hint(err) == "" {
		t.Error("no hint")
	}
	checkOnly(t, dir) // nothing at -o, no .tmp, no download directory
}

func TestRestoreChecksumMismatch(t *testing.T) {
	m := newModel(512)
	m.txs(6)
	wrong := func(h *ltx.Header, post *ltx.Checksum) { *post ^= 0x1234 }
	tests := []struct {
		name  string
		setup func(st s3backend.Store)
		bad   string
	}{
		{
			name: "last file's post-apply checksum",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "", 1)
				m.putL0(t, st, "", 2, 5)
				m.putWith(t, st, "", 0, 6, 6, wrong)
			},
			bad: key("", 0, 6, 6),
		},
		{
			name: "pre-apply checksum does not chain",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "", 1)
				m.putL0(t, st, "", 2, 3)
				m.putWith(t, st, "", 0, 4, 4, func(h *ltx.Header, _ *ltx.Checksum) { h.PreApplyChecksum ^= 0x10 })
				m.putL0(t, st, "", 5, 6)
			},
			bad: key("", 0, 4, 4),
		},
		{
			name: "middle file's post-apply checksum breaks the chain",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "", 1)
				m.putL0(t, st, "", 2, 6)
				m.putWith(t, st, "", 0, 3, 3, wrong)
			},
			bad: key("", 0, 4, 4),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			tt.setup(st)
			dir := t.TempDir()
			_, err := Restore(context.Background(), st, "", filepath.Join(dir, "db"), restoreOpts())
			if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), tt.bad) {
				t.Fatalf("err = %v, want ErrChecksumMismatch naming %s", err, tt.bad)
			}
			checkOnly(t, dir)
		})
	}
}

func TestRestoreSnapshotChecksum(t *testing.T) {
	// A snapshot whose post-apply checksum does not match its pages is
	// caught by the decoder as soon as it is read.
	m := newModel(512)
	m.txs(3)
	st := newMemStore()
	m.putWith(t, st, "", 9, 1, 3, func(_ *ltx.Header, post *ltx.Checksum) { *post ^= 0x100 })
	_, err := Restore(context.Background(), st, "", filepath.Join(t.TempDir(), "db"), restoreOpts())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key("", 9, 1, 3)) {
		t.Fatalf("err = %v, want ErrCorrupt naming the snapshot", err)
	}
}

func TestRestoreHeaderMismatchesKey(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := newMemStore()
	m.putSnapshot(t, st, "", 1)
	b := m.encode(t, 2, 3, nil)
	info := s3backend.FileInfo{Level: 0, MinTXID: 2, MaxTXID: 2, CreatedAt: m.times[3]} // key says 2-2
	if _, err := st.Write(context.Background(), info, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(context.Background(), st, "", filepath.Join(t.TempDir(), "db"), restoreOpts())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "does not match the key") {
		t.Fatalf("err = %v, want a header/key mismatch", err)
	}
}

func TestRestoreExistingOutput(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := newMemStore()
	m.putSnapshot(t, st, "", 3)
	dir := t.TempDir()
	out := filepath.Join(dir, "db")
	if err := os.WriteFile(out, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(context.Background(), st, "", out, restoreOpts())
	if !errors.Is(err, ErrOutputExists) || !strings.Contains(s3backend.Hint(err), "--force") {
		t.Fatalf("err = %v, want ErrOutputExists with a hint", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("existing output changed")
	}

	// A stale WAL beside the output would be replayed over the restored db.
	os.Remove(out)
	if err := os.WriteFile(out+"-wal", []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), st, "", out, restoreOpts()); !errors.Is(err, ErrOutputExists) {
		t.Fatalf("err = %v, want ErrOutputExists for a stale -wal", err)
	}

	if err := os.WriteFile(out, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := restoreOpts()
	opts.Force = true
	if _, err := Restore(context.Background(), st, "", out, opts); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, m, out, 3) // and the -wal is gone
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the replaced file's 0600", fi.Mode().Perm())
	}
}

func TestRestoreResumesBrokenDownload(t *testing.T) {
	m := newModel(4096)
	m.txs(30)
	st := newMemStore()
	snap := m.putSnapshot(t, st, "", 30)
	k := s3backend.Key(snap)
	st.breakAfter = snap.Size / 5
	// The first open is MakePlan's header read (100 bytes, never reaches the
	// break); the next three downloads break, each 1/5 of the object further.
	st.breaks[k] = 4
	out := filepath.Join(t.TempDir(), "db")
	if _, err := Restore(context.Background(), st, "", out, restoreOpts()); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, m, out, 30)
	// MakePlan reads the header at 0; the download starts at 0 and resumes.
	d := snap.Size / 5
	if got, want := st.opens[k], []int64{0, 0, d, 2 * d, 3 * d}; !slices.Equal(got, want) {
		t.Errorf("open offsets %v, want %v", got, want)
	}
}

func TestRestoreDownloadGivesUp(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := newMemStore()
	m.putSnapshot(t, st, "", 1)
	m.putL0(t, st, "", 2, 3)
	k := key("", 0, 2, 2)
	st.breakAfter = 0
	st.breaks[k] = 100 // every read fails before the first byte
	dir := t.TempDir()
	_, err := Restore(context.Background(), st, "", filepath.Join(dir, "db"), restoreOpts())
	if err == nil || !strings.Contains(err.Error(), "download "+k) {
		t.Fatalf("err = %v, want a download error naming %s", err, k)
	}
	if got := len(st.opens[k]); got != maxStalls {
		t.Errorf("%d attempts, want %d", got, maxStalls)
	}
	checkOnly(t, dir)
}

func TestRestoreObjectDeletedWhileRestoring(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := newMemStore()
	m.putSnapshot(t, st, "", 1)
	m.putL0(t, st, "", 2, 3)
	// Deleted between planning and download: permanent, no retries.
	k := key("", 0, 2, 2)
	o := st.object(k)
	p := &deletingStore{memStore: st, victim: o.info}
	_, err := Restore(context.Background(), p, "", filepath.Join(t.TempDir(), "db"), restoreOpts())
	if !errors.Is(err, s3backend.ErrNotFound) || !strings.Contains(err.Error(), k) {
		t.Fatalf("err = %v, want ErrNotFound naming %s", err, k)
	}
}

// deletingStore deletes victim right after the first List of level 0.
type deletingStore struct {
	*memStore
	victim s3backend.FileInfo
	once   sync.Once
}

func (d *deletingStore) List(ctx context.Context, db string, level int) ([]s3backend.FileInfo, error) {
	infos, err := d.memStore.List(ctx, db, level)
	if level == 0 {
		d.once.Do(func() { d.memStore.Delete(ctx, []s3backend.FileInfo{d.victim}) })
	}
	return infos, err
}

func TestRestoreProgress(t *testing.T) {
	m := newModel(512)
	m.txs(20)
	st := newMemStore()
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

func TestRestoreCanceled(t *testing.T) {
	m := newModel(512)
	m.txs(5)
	st := newMemStore()
	m.putSnapshot(t, st, "", 5)
	ctx, cancel := context.WithCancel(context.Background())
	opts := restoreOpts()
	opts.Progress = func(Progress) { cancel() }
	dir := t.TempDir()
	_, err := Restore(ctx, st, "", filepath.Join(dir, "db"), opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	checkOnly(t, dir)
}

func TestRestoreBadOptions(t *testing.T) {
	_, err := Restore(context.Background(), newMemStore(), "", filepath.Join(t.TempDir(), "db"), Options{IntegrityCheck: "deep"})
	if err == nil || !strings.Contains(err.Error(), `"deep"`) {
		t.Fatalf("err = %v, want an unknown integrity check error", err)
	}
}

func TestRestoreNoBackups(t *testing.T) {
	dir := t.TempDir()
	_, err := Restore(context.Background(), newMemStore(), "x.db", filepath.Join(dir, "db"), restoreOpts())
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

func TestRestoreLeavesNoTempFilesOnIntegrityFailure(t *testing.T) {
	m := newModel(4096) // random pages: not a SQLite database
	m.txs(2)
	st := newMemStore()
	m.putSnapshot(t, st, "", 2)
	dir := t.TempDir()
	_, err := Restore(context.Background(), st, "", filepath.Join(dir, "db"), Options{IntegrityCheck: IntegrityQuick})
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("err = %v, want ErrIntegrity", err)
	}
	checkOnly(t, dir)
}
