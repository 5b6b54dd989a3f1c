package fusefs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A truncate to the size a database already has changes no byte, and SQLite
// ends every complete WAL checkpoint with one: it is not reported as a write
// outside SQLite's protocol (each report made the replicator read the whole
// database again). A truncate that changes the size is.
func TestTruncateToSameSizeNotSuspect(t *testing.T) {
	requireMount(t)
	dir := t.TempDir()
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	_, rec := mountRecorder(t, data, mnt)
	db := filepath.Join(mnt, "app.db")
	if err := os.WriteFile(filepath.Join(data, "app.db"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(8192); err != nil {
		t.Fatal(err)
	}
	if got := rec.suspected(); len(got) != 0 {
		t.Fatalf("a truncate to the current size was reported: %v", got)
	}
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.suspected(), []string{"app.db: resized"}; !slices.Equal(got, want) {
		t.Fatalf("suspects after a truncate that shrinks: got %v, want %v", got, want)
	}
}
