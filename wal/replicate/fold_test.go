package replicate

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/memstore"
)

// A database the store holds nothing of waits one sync interval for its first
// upload, and its first snapshot and the commits after it go up as one
// snapshot at the last of them: one PUT, no level-0 file, the latest point
// restorable. The next commits chain from it in level 0 as usual.
func TestNewDatabaseFirstUploadFolds(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "app.db")
	makeWALDatabase(t, path, 3)
	live := openLive(t, path)
	exec := func(q string) {
		t.Helper()
		if _, err := live.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec("pragma wal_autocheckpoint=0")
	exec("insert into t(v) values('before')")
	store, count := memstore.New(), instrument.NewCounter()
	const interval = 300 * time.Millisecond
	r, err := New(Options{
		DataDir: dataDir, Store: instrument.Wrap(store, count), Logger: testLogger(t),
		Capture: CapturePassthrough, SyncInterval: interval, Maintenance: MaintenanceOptions{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.WaitResumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	d := r.lookup("app.db")
	wf, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	if err := r.WALOpen("app.db", wf); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		exec("insert into t(v) values('" + v + "')")
		if err := d.pollNow(); err != nil {
			t.Fatal(err)
		}
	}
	last := d.up.Status().Last
	deadline := time.Now().Add(20 * interval)
	for d.up.uploadedTXID() < last {
		if time.Now().After(deadline) {
			t.Fatalf("nothing uploaded %v after the commits (uploaded %d, spooled %d)", 20*interval, d.up.uploadedTXID(), last)
		}
		time.Sleep(interval / 10)
	}
	if got := count.Ops()[instrument.OpPut].Calls; got != 1 {
		t.Errorf("PUTs: got %d, want 1 (the first snapshot with the commits after it)", got)
	}
	list := func(level int) []string {
		infos, err := store.List(t.Context(), "app.db", level)
		if err != nil {
			t.Fatal(err)
		}
		return keys(infos)
	}
	if got, want := list(s3backend.LevelSnapshot), asKeys(lf(9, 1, last)); !slices.Equal(got, want) {
		t.Errorf("level 9: got %v, want %v", got, want)
	}
	if got := list(s3backend.LevelL0); len(got) != 0 {
		t.Errorf("level 0: got %v, want nothing", got)
	}
	requireRestoreMatches(t, store, "app.db", live, allRows)

	exec("insert into t(v) values('d')")
	if err := d.pollNow(); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := list(s3backend.LevelL0), asKeys(lf(0, last+1, last+1)); !slices.Equal(got, want) {
		t.Errorf("level 0 after one more commit: got %v, want %v", got, want)
	}
	requireRestoreMatches(t, store, "app.db", live, allRows)
}
