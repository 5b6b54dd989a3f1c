package restore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/superfly/ltx"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
)

func TestRestoreCorruptObject(t *testing.T) {
	m := newModel(512)
	m.txs(10)
	st := memstore.New()
	m.putSnapshot(t, st, "app.db", 1)
	m.putL0(t, st, "app.db", 2, 10)
	bad := key("app.db", 0, 6, 6)
	badInfo, _ := s3backend.ParseKey(bad)
	if err := st.Rewrite(badInfo, func(b []byte) []byte {
		b[ltx.HeaderSize+20] ^= 0x40 // inside the first page frame
		return b
	}); err != nil {
		t.Fatal(err)
	}

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
			st := memstore.New()
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
	st := memstore.New()
	m.putWith(t, st, "", 9, 1, 3, func(_ *ltx.Header, post *ltx.Checksum) { *post ^= 0x100 })
	_, err := Restore(context.Background(), st, "", filepath.Join(t.TempDir(), "db"), restoreOpts())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key("", 9, 1, 3)) {
		t.Fatalf("err = %v, want ErrCorrupt naming the snapshot", err)
	}
}

func TestRestoreHeaderMismatchesKey(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := memstore.New()
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
	st := memstore.New()
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
	st := memstore.New()
	snap := m.putSnapshot(t, st, "", 30)
	k := s3backend.Key(snap)
	// The first open is MakePlan's header read (100 bytes, never reaches the
	// break); the next three downloads break, each 1/5 of the object further.
	f := breakOpens(st, k, 4, snap.Size/5)
	out := filepath.Join(t.TempDir(), "db")
	if _, err := Restore(context.Background(), f, "", out, restoreOpts()); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, m, out, 30)
	// MakePlan reads the header at 0; the download starts at 0 and resumes.
	d := snap.Size / 5
	if got, want := openOffsets(f, k), []int64{0, 0, d, 2 * d, 3 * d}; !slices.Equal(got, want) {
		t.Errorf("open offsets %v, want %v", got, want)
	}
}

func TestRestoreDownloadGivesUp(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := memstore.New()
	m.putSnapshot(t, st, "", 1)
	m.putL0(t, st, "", 2, 3)
	k := key("", 0, 2, 2)
	f := breakOpens(st, k, 100, 0) // every read fails before the first byte
	dir := t.TempDir()
	_, err := Restore(context.Background(), f, "", filepath.Join(dir, "db"), restoreOpts())
	if err == nil || !strings.Contains(err.Error(), "download "+k) {
		t.Fatalf("err = %v, want a download error naming %s", err, k)
	}
	if got := len(openOffsets(f, k)); got != maxStalls {
		t.Errorf("%d attempts, want %d", got, maxStalls)
	}
	checkOnly(t, dir)
}

func TestRestoreObjectDeletedWhileRestoring(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := memstore.New()
	m.putSnapshot(t, st, "", 1)
	m.putL0(t, st, "", 2, 3)
	// Deleted between planning and download: permanent, no retries.
	k := key("", 0, 2, 2)
	victim, _ := s3backend.ParseKey(k)
	p := memstore.Wrap(st)
	// Deleted right after the first listing of level 0.
	p.Inject(memstore.Fault{
		Op: memstore.OpList, Times: 1,
		Match: func(c memstore.Call) bool { return c.Level == 0 },
		Then: func(memstore.Call) {
			if err := st.Delete(context.Background(), []s3backend.FileInfo{victim}); err != nil {
				t.Error(err)
			}
		},
	})
	_, err := Restore(context.Background(), p, "", filepath.Join(t.TempDir(), "db"), restoreOpts())
	if !errors.Is(err, s3backend.ErrNotFound) || !strings.Contains(err.Error(), k) {
		t.Fatalf("err = %v, want ErrNotFound naming %s", err, k)
	}
}

func TestRestoreCanceled(t *testing.T) {
	m := newModel(512)
	m.txs(5)
	st := memstore.New()
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

func TestRestoreLeavesNoTempFilesOnIntegrityFailure(t *testing.T) {
	m := newModel(4096) // random pages: not a SQLite database
	m.txs(2)
	st := memstore.New()
	m.putSnapshot(t, st, "", 2)
	dir := t.TempDir()
	_, err := Restore(context.Background(), st, "", filepath.Join(dir, "db"), Options{IntegrityCheck: IntegrityQuick})
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("err = %v, want ErrIntegrity", err)
	}
	checkOnly(t, dir)
}

func TestRestoreOutputCreatedWhileRestoring(t *testing.T) {
	m := newModel(512)
	m.txs(3)
	st := memstore.New()
	m.putSnapshot(t, st, "", 3)
	dir := t.TempDir()
	out := filepath.Join(dir, "db")
	opts := restoreOpts()
	opts.Progress = func(p Progress) {
		if p.FilesDone == p.Files {
			os.WriteFile(out, []byte("someone else's"), 0o600)
		}
	}
	_, err := Restore(context.Background(), st, "", out, opts)
	if !errors.Is(err, ErrOutputExists) {
		t.Fatalf("err = %v, want ErrOutputExists", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "someone else's" {
		t.Error("output overwritten")
	}
	checkOnly(t, dir, "db")
}
