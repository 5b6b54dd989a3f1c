package restore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walfs/walfs/s3backend/memstore"
)

func TestRestoreAll(t *testing.T) {
	m := newModel(1024)
	m.txs(40)
	st := layeredReplica(t, m, "app.db")
	m.putSnapshot(t, st, "sub/dir/other.db", 10)
	m.putL0(t, st, "sub/dir/other.db", 11, 15)
	// Created after TXID 30's commit time: no state at TXID 30's time.
	m.putSnapshot(t, st, "late.db", 35)

	t.Run("latest", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		var started []string
		opts := AllOptions{Options: restoreOpts(), Started: func(db, _ string) { started = append(started, db) }}
		res, err := RestoreAll(context.Background(), st, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(started, " "), "app.db late.db sub/dir/other.db"; got != want {
			t.Errorf("started %q, want %q", got, want)
		}
		for i, want := range []struct {
			db   string
			txid uint64
		}{{"app.db", 40}, {"late.db", 35}, {"sub/dir/other.db", 15}} {
			r := res[i]
			if r.DB != want.db || r.Status() != "restored" || r.Plan.TXID != want.txid {
				t.Fatalf("result %d = %s %s TXID %v, want %s restored at %d (err %v)", i, r.DB, r.Status(), r.Plan, want.db, want.txid, r.Err)
			}
			checkImage(t, m, filepath.Join(dir, filepath.FromSlash(want.db)), want.txid)
		}
		checkOnly(t, dir, "app.db", "late.db", "sub")
		checkOnly(t, filepath.Join(dir, "sub", "dir"), "other.db")

		// Again: every output exists. IfNotExists skips them all; without
		// it every database fails and nothing is overwritten.
		opts.IfNotExists = true
		res, err = RestoreAll(context.Background(), st, dir, opts)
		if err != nil || len(res) != 3 || res[0].Status() != "skipped" || res[2].Skipped != "output exists" {
			t.Fatalf("IfNotExists: %v, %+v", err, res)
		}
		opts.IfNotExists = false
		res, err = RestoreAll(context.Background(), st, dir, opts)
		if !errors.Is(err, ErrSomeFailed) || !strings.Contains(err.Error(), "3 of 3") {
			t.Fatalf("err = %v, want ErrSomeFailed for 3 of 3", err)
		}
		if !errors.Is(res[1].Err, ErrOutputExists) {
			t.Errorf("late.db: err = %v, want ErrOutputExists", res[1].Err)
		}
	})

	t.Run("timestamp", func(t *testing.T) {
		dir := t.TempDir()
		opts := AllOptions{Options: restoreOpts()}
		opts.Target.Timestamp = m.times[30]
		res, err := RestoreAll(context.Background(), st, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0]; r.Status() != "restored" || r.Plan.TXID != 30 {
			t.Errorf("app.db: %s at %v (err %v), want restored at 30", r.Status(), r.Plan, r.Err)
		}
		if r := res[1]; r.Status() != "skipped" || !strings.Contains(r.Skipped, "nothing committed") {
			t.Errorf("late.db: %s %q (err %v), want skipped", r.Status(), r.Skipped, r.Err)
		}
		if r := res[2]; r.Status() != "restored" || r.Plan.TXID != 15 {
			t.Errorf("other.db: %s at %v (err %v), want restored at 15", r.Status(), r.Plan, r.Err)
		}
		if _, err := os.Stat(filepath.Join(dir, "late.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("late.db was written: %v", err)
		}
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		res, err := RestoreAll(context.Background(), st, dir, AllOptions{Options: restoreOpts(), DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 3 || res[0].Status() != "planned" || res[0].Plan.TXID != 40 {
			t.Fatalf("results %+v", res)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dry run created %s", dir)
		}
	})

	t.Run("TXID target refused", func(t *testing.T) {
		opts := AllOptions{Options: restoreOpts()}
		opts.Target.TXID = 3
		if _, err := RestoreAll(context.Background(), st, t.TempDir(), opts); err == nil {
			t.Fatal("RestoreAll with a TXID target succeeded")
		}
	})

	t.Run("a failure does not stop the others", func(t *testing.T) {
		bad := layeredReplica(t, m, "a.db")
		m.putSnapshot(t, bad, "b.db", 5)
		m.putL0(t, bad, "b.db", 6, 6)
		m.putL0(t, bad, "b.db", 8, 8) // gap at 7
		m.putSnapshot(t, bad, "c.db", 3)
		dir := t.TempDir()
		res, err := RestoreAll(context.Background(), bad, dir, AllOptions{Options: restoreOpts()})
		if !errors.Is(err, ErrSomeFailed) || !strings.Contains(err.Error(), "1 of 3") {
			t.Fatalf("err = %v, want ErrSomeFailed 1 of 3", err)
		}
		if !errors.Is(res[1].Err, ErrGap) || res[0].Status() != "restored" || res[2].Status() != "restored" {
			t.Fatalf("statuses %s %s %s (b.db: %v)", res[0].Status(), res[1].Status(), res[2].Status(), res[1].Err)
		}
		checkOnly(t, dir, "a.db", "c.db")
		checkImage(t, m, filepath.Join(dir, "c.db"), 3)
	})

	t.Run("database at the root", func(t *testing.T) {
		root := memstore.New()
		m.putSnapshot(t, root, "", 4)
		dir := t.TempDir()
		res, err := RestoreAll(context.Background(), root, dir, AllOptions{Options: restoreOpts(), RootName: "app.db"})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Output != filepath.Join(dir, "app.db") {
			t.Errorf("output %s", res[0].Output)
		}
		checkRestored(t, m, filepath.Join(dir, "app.db"), 4)
	})

	t.Run("empty replica", func(t *testing.T) {
		_, err := RestoreAll(context.Background(), memstore.New(), t.TempDir(), AllOptions{Options: restoreOpts()})
		if !errors.Is(err, ErrNoBackups) {
			t.Fatalf("err = %v, want ErrNoBackups", err)
		}
	})
}

// checkImage checks the file at path equals the model at txid.
func checkImage(t *testing.T, m *model, path string, txid uint64) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, m.image(txid)) {
		t.Fatalf("%s differs from the state at TXID %d", path, txid)
	}
}
