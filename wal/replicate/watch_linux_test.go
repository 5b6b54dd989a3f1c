package replicate

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatcherTakeDirty checks the property checkpoints rely on: a write to a
// watched WAL that returned before takeDirty is always reported by it.
func TestWatcherTakeDirty(t *testing.T) {
	w, err := newWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	dir, other := t.TempDir(), t.TempDir()
	if err := w.add(dir); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "app.db-wal")
	f, err := os.Create(wal)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	step := func(name string, want bool) {
		t.Helper()
		if got := w.takeDirty(wal); got != want {
			t.Fatalf("%s: takeDirty = %v, want %v", name, got, want)
		}
	}
	step("first ask", true)
	step("unchanged", false)
	for i := range 3 {
		if _, err := f.WriteAt([]byte("frame"), int64(i*100)); err != nil {
			t.Fatal(err)
		}
		step("after write", true)
		step("unchanged again", false)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	step("after truncate", true)

	// Another file in the directory does not make the WAL dirty.
	if err := os.WriteFile(filepath.Join(dir, "app.db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	step("other file written", false)

	w.markDirty(wal)
	step("marked", true)

	unwatched := filepath.Join(other, "b.db-wal")
	for range 2 {
		if !w.takeDirty(unwatched) {
			t.Fatal("a WAL in an unwatched directory must always count as changed")
		}
	}

	w.close()
	step("after close", true)
	step("after close, again", true)
}

// TestWatcherRun checks that run reports each modified WAL and stops on close.
func TestWatcherRun(t *testing.T) {
	w, err := newWatcher()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := w.add(dir); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(func(p string) { got <- p })
	}()
	wal := filepath.Join(dir, "x.db-wal")
	if err := os.WriteFile(wal, []byte("frame"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != wal {
			t.Fatalf("run reported %s, want %s", p, wal)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report of the modified WAL")
	}
	// run marked it dirty too, for the next checkpoint.
	if !w.takeDirty(wal) {
		t.Fatal("takeDirty after run's report: false")
	}
	w.close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop on close")
	}
}

// A lone commit is captured after the short delay; changes that keep
// coming gather for longer.
func TestCoalesceAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		last time.Time
		want time.Duration
	}{
		{time.Time{}, watchCoalesce},                          // the first wake-up
		{now.Add(-time.Second), watchCoalesce},                // after a quiet spell
		{now.Add(-watchStreamGap), watchCoalesce},             // just quiet enough
		{now.Add(-3 * time.Millisecond), watchStreamCoalesce}, // in a stream
		{now.Add(-watchStreamGap + 1), watchStreamCoalesce},   // just inside it
	} {
		if got := coalesceAfter(now, tc.last); got != tc.want {
			t.Errorf("last pass %v before: %v, want %v", now.Sub(tc.last), got, tc.want)
		}
	}
}
