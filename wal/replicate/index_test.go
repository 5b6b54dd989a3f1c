package replicate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
)

func TestIndexStore(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	pre := fi(0, 1, 1, 0)
	if _, err := inner.Write(ctx, pre, bytes.NewReader([]byte("a")), 1); err != nil {
		t.Fatal(err)
	}
	cache := &writeCache{dir: t.TempDir()}
	s := newIndexStore(inner, cache, time.Now)
	if got := s.unseeded("db"); len(got) != len(indexedLevels) {
		t.Fatalf("unseeded before any listing: %v", got)
	}
	// A write before the level is listed is kept when the listing seeds it.
	w, err := s.Write(ctx, fi(0, 2, 2, 0), bytes.NewReader([]byte("bb")), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, "db", 0); err != nil {
		t.Fatal(err)
	}
	if got := keys(s.files("db", 0)); len(got) != 2 {
		t.Fatalf("level 0 after seeding: %v, want 1-1 and 2-2", got)
	}
	// Later listings do not change the index (no surprises from outside).
	inner.Write(ctx, fi(0, 3, 3, 0), bytes.NewReader([]byte("c")), 1)
	s.List(ctx, "db", 0)
	if got := keys(s.files("db", 0)); len(got) != 2 {
		t.Fatalf("level 0 after a second listing: %v, want it unchanged", got)
	}
	// The uploaded file was cached, the listed one not.
	if f := cache.open(w); f == nil {
		t.Error("uploaded level-0 file not in the write cache")
	} else {
		f.Close()
	}
	if f := cache.open(pre); f != nil {
		f.Close()
		t.Error("listed file in the write cache")
	}
	// Delete forgets the file and its cached copy.
	if err := s.Delete(ctx, []s3backend.FileInfo{w}); err != nil {
		t.Fatal(err)
	}
	if got := keys(s.files("db", 0)); len(got) != 1 || got[0] != "L0:1-1" {
		t.Fatalf("level 0 after delete: %v", got)
	}
	if f := cache.open(w); f != nil {
		f.Close()
		t.Error("deleted file still cached")
	}
	ev := s.events("db")
	if ev.uploads != 1 || ev.uploadBytes != 2 || ev.deleted != 1 {
		t.Errorf("events: %+v, want 1 upload of 2 bytes, 1 deletion", ev)
	}
	// A failed upload is counted and leaves no cached copy.
	bad := fi(0, 4, 4, 0)
	if _, err := s.Write(ctx, bad, bytes.NewReader([]byte("toolong")), 1); !errors.Is(err, s3backend.ErrSizeMismatch) {
		t.Fatalf("short write: %v", err)
	}
	if ev := s.events("db"); ev.uploadErrs != 1 || ev.lastErr == nil {
		t.Errorf("failed upload not recorded: %+v", ev)
	}
	if f := cache.open(bad); f != nil {
		f.Close()
		t.Error("failed upload left a cached copy")
	}
	// Maintenance writes are told apart from uploads.
	if _, err := s.Write(maintenanceCtx(ctx), fi(1, 1, 2, 0), bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if ev := s.events("db"); ev.uploads != 1 || ev.written[1] != 1 {
		t.Errorf("maintenance write counted as upload: %+v", ev)
	}
}

func TestSpoolPending(t *testing.T) {
	sp := spool{dir: t.TempDir()}
	if n, oldest := sp.pending(0); n != 0 || !oldest.IsZero() {
		t.Fatalf("empty spool: %d bytes, oldest %v", n, oldest)
	}
	at := time.UnixMilli(time.Now().Add(-3 * time.Second).UnixMilli())
	segment := func(first uint64, ts time.Time) int64 {
		payload := appendRawHeader(nil, rawTxn{PageSize: 512, Commit: 1, Timestamp: ts.UnixMilli(), Pre: ltx.ChecksumFlag | 1, Post: ltx.ChecksumFlag | 2, NPages: 1})
		payload = binary.BigEndian.AppendUint32(payload, 1)
		payload = append(payload, make([]byte, 512)...)
		rec := appendRecord(nil, first, payload)
		if err := os.WriteFile(sp.segmentPath(first), rec, 0o600); err != nil {
			t.Fatal(err)
		}
		return int64(len(rec))
	}
	n := segment(5, at.Add(-time.Hour)) + segment(7, at)
	os.WriteFile(filepath.Join(sp.dir, "unrelated"), []byte("x"), 0o600)
	bytes, oldest := sp.pending(6) // 5 is uploaded but not yet removed
	if bytes != n || !oldest.Equal(at) {
		t.Errorf("pending: %d bytes oldest %v, want %d bytes oldest %v", bytes, oldest, n, at)
	}
}
