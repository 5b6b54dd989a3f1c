package s3backend_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/storetest"
)

func TestFileStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) s3backend.Store {
		return s3backend.NewFileStore(filepath.Join(t.TempDir(), "replica"))
	})
}

func TestFileStoreLayoutOnDisk(t *testing.T) {
	root := t.TempDir()
	s := s3backend.NewFileStore(root)
	ctx := t.Context()
	at := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	fi := s3backend.FileInfo{DB: "sub/dir/app.db", Level: 0, MinTXID: 1, MaxTXID: 2, CreatedAt: at}
	if _, err := s.Write(ctx, fi, strings.NewReader("ltx"), 3); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "sub", "dir", "app.db", "0000", "0000000000000001-0000000000000002.ltx")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("object not at the Litestream path: %v", err)
	}
	if !st.ModTime().Equal(at) {
		t.Fatalf("mtime: got %v, want %v", st.ModTime(), at)
	}
	// No temp files are left behind.
	entries, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("level dir holds %d entries, want 1", len(entries))
	}
}

func TestFileStoreIgnoresForeignFiles(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{
		"0000/not-an-ltx.txt",
		"db/0000/.walfs-tmp-0000000000000001-0000000000000001.ltx-123",
		"db/0000/0000000000000000-0000000000000001.ltx", // TXID 0 is invalid
		"db/zz00/0000000000000001-0000000000000001.ltx",
		"other/readme",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := s3backend.NewFileStore(root)
	dbs, err := s.ListDatabases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 0 {
		t.Fatalf("ListDatabases: got %q, want none", dbs)
	}
	infos, err := s.List(context.Background(), "db", 0)
	if err != nil || len(infos) != 0 {
		t.Fatalf("List: got %v, %v; want none", infos, err)
	}
}

func TestFileStoreRootedAtOneDB(t *testing.T) {
	root := t.TempDir()
	s := s3backend.NewFileStore(root)
	fi := s3backend.FileInfo{Level: 9, MinTXID: 1, MaxTXID: 3}
	if _, err := s.Write(t.Context(), fi, strings.NewReader("snap"), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "0009", "0000000000000001-0000000000000003.ltx")); err != nil {
		t.Fatal(err)
	}
	dbs, err := s.ListDatabases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{""}; !slices.Equal(dbs, want) {
		t.Fatalf("ListDatabases: got %q, want %q", dbs, want)
	}
}

func TestFileStoreInitUnwritable(t *testing.T) {
	// Root ignores directory permissions, so use a path under a regular file.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := s3backend.NewFileStore(filepath.Join(f, "replica")).Init(t.Context())
	if err == nil {
		t.Fatal("Init under a regular file: got nil error")
	}
	if s3backend.Hint(err) == "" {
		t.Fatalf("Init error carries no hint: %v", err)
	}
}

// Every directory and object the store creates is private, whatever the
// umask (a mount runs with umask 0): the objects hold database pages.
func TestFileStoreModes(t *testing.T) {
	old := syscall.Umask(0) // no test in this package runs in parallel
	t.Cleanup(func() { syscall.Umask(old) })
	root := filepath.Join(t.TempDir(), "replica")
	s := s3backend.NewFileStore(root)
	ctx := t.Context()
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, fi := range []s3backend.FileInfo{
		{DB: "app.db", Level: 0, MinTXID: 1, MaxTXID: 1},
		{DB: "sub/dir/other.db", Level: 9, MinTXID: 1, MaxTXID: 3},
	} {
		if _, err := s.Write(ctx, fi, strings.NewReader("ltx"), 3); err != nil {
			t.Fatal(err)
		}
	}
	etag, err := s.PutIfAbsent(ctx, "locks/app.db/lease.json", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutIfMatch(ctx, "locks/app.db/lease.json", []byte("2"), etag); err != nil {
		t.Fatal(err)
	}
	var files int
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := files, 3; got != want {
		t.Errorf("store holds %d files, want %d", got, want)
	}
}
