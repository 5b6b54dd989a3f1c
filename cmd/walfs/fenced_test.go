package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
)

// A primary refused at start because a standby took over keeps aside the
// databases the replica no longer describes, names them in one line, and
// leaves alone the ones that still match.
func TestSetAsideFenced(t *testing.T) {
	ctx := context.Background()
	data, rep := t.TempDir(), t.TempDir()
	store := s3backend.NewFileStore(rep)
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(data, ".walfs")
	// pending.db: spooled commits never uploaded.
	write(filepath.Join(data, "pending.db"), "db")
	write(filepath.Join(data, "pending.db-wal"), "wal")
	write(filepath.Join(state, "pos", "pending.db.json"), `{"txid":5,"checksum":"8000000000000001"}`)
	write(filepath.Join(state, "spool", "pending.db", "0000000000000006.seg"), "rec")
	// moved.db: nothing pending, but the new primary wrote past TXID 5.
	write(filepath.Join(data, "sub", "moved.db"), "db")
	write(filepath.Join(state, "pos", "sub", "moved.db.json"), `{"txid":5,"checksum":"8000000000000001"}`)
	// same.db: the replica is where this data dir left it.
	write(filepath.Join(data, "same.db"), "db")
	write(filepath.Join(state, "pos", "same.db.json"), `{"txid":7,"checksum":"8000000000000001"}`)
	for _, info := range []s3backend.FileInfo{
		{DB: "sub/moved.db", Level: 0, MinTXID: 6, MaxTXID: 9, CreatedAt: time.Now()},
		{DB: "same.db", Level: 9, MinTXID: 1, MaxTXID: 7, CreatedAt: time.Now()},
	} {
		if _, err := store.Write(ctx, info, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	held := &lease.HeldError{Where: "file://" + rep, Key: lease.DefaultKey, Holder: lease.Holder{Host: "b", PID: 7}, Expires: time.Now().Add(time.Minute), Now: time.Now()}
	err := setAsideFenced(ctx, data, store, held)
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "walfs pid 7 on host b") || !strings.Contains(msg, "pending.db (with commits never uploaded)") || !strings.Contains(msg, "sub/moved.db") || strings.Contains(msg, "same.db") {
		t.Fatalf("error line: %q", msg)
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "fenced", "*"))
	if len(dirs) != 1 || !strings.Contains(msg, dirs[0]) {
		t.Fatalf("fenced dirs %v, not named in %q", dirs, msg)
	}
	for _, p := range []string{"db/pending.db", "db/pending.db-wal", "spool/pending.db/0000000000000006.seg", "pos/pending.db.json", "db/sub/moved.db", "pos/sub/moved.db.json"} {
		if _, err := os.Stat(filepath.Join(dirs[0], p)); err != nil {
			t.Errorf("not kept aside: %v", err)
		}
	}
	for _, p := range []string{"pending.db", "pending.db-wal", "sub/moved.db", ".walfs/pos/pending.db.json"} {
		if _, err := os.Stat(filepath.Join(data, p)); !os.IsNotExist(err) {
			t.Errorf("%s still in the data dir: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "same.db")); err != nil {
		t.Errorf("same.db, which the replica still describes, was moved: %v", err)
	}
}
