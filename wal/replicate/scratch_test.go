package replicate

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

func TestRemoveScratch(t *testing.T) {
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, "merge-*.pages")
	if err != nil {
		t.Fatal(err)
	}
	if err := removeScratch(f); err != nil {
		t.Fatalf("removeScratch: %v", err)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("scratch file still there: stat: %v", err)
	}

	// A file that cannot be removed is reported, not dropped.
	g, err := os.CreateTemp(dir, "merge-*.pages")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g.Name()); err != nil {
		t.Fatal(err)
	}
	if err := removeScratch(g); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removeScratch of a vanished file: got %v, want fs.ErrNotExist", err)
	}
}
