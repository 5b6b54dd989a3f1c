package restore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/walfs/walfs/s3backend/memstore"
)

// withUmask sets the process umask for the rest of the test. A mount runs
// with umask 0, so modes must never come from it. (No test in this package
// runs in parallel.)
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// perm returns the permission bits of path.
func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A restored database is private unless it replaces a file whose mode it
// keeps, and nothing in flight is readable by others, whatever the umask.
func TestRestoreModes(t *testing.T) {
	m := newModel(1024)
	m.txs(40)
	st := layeredReplica(t, m, "app.db")
	for _, tc := range []struct {
		name     string
		umask    int
		replaces fs.FileMode // 0: no file at the output
		want     fs.FileMode
	}{
		{"new file, umask 0", 0, 0, 0o600},
		{"new file, umask 022", 0o022, 0, 0o600},
		{"replaces 0640", 0, 0o640, 0o640},
		{"replaces 0664 despite umask 027", 0o027, 0o664, 0o664},
		{"replaces 0600", 0o022, 0o600, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withUmask(t, tc.umask)
			out := filepath.Join(t.TempDir(), "app.db")
			opts := restoreOpts()
			if tc.replaces != 0 {
				if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(out, tc.replaces); err != nil {
					t.Fatal(err)
				}
				opts.Force = true
			}
			inFlight := map[string]fs.FileMode{} // path → widest mode seen while restoring
			opts.Progress = func(Progress) {
				paths := []string{out + ".tmp", out + ".walfs-restore"}
				ents, _ := os.ReadDir(out + ".walfs-restore")
				for _, e := range ents {
					paths = append(paths, filepath.Join(out+".walfs-restore", e.Name()))
				}
				for _, p := range paths {
					if fi, err := os.Lstat(p); err == nil {
						inFlight[p] |= fi.Mode().Perm()
					}
				}
			}
			if _, err := Restore(context.Background(), st, "app.db", out, opts); err != nil {
				t.Fatal(err)
			}
			checkRestored(t, m, out, 40)
			if got := perm(t, out); got != tc.want {
				t.Errorf("restored file mode %v, want %v", got, tc.want)
			}
			if len(inFlight) < 2 {
				t.Fatalf("progress saw %d in-flight paths, want the temp file and the download dir", len(inFlight))
			}
			for p, got := range inFlight {
				want := fs.FileMode(0o600)
				if p == out+".walfs-restore" {
					want = 0o700
				}
				if got != want {
					t.Errorf("%s while restoring: mode %v, want %v", filepath.Base(p), got, want)
				}
			}
		})
	}
}

// RestoreAll creates private directories and files, whatever the umask.
func TestRestoreAllModes(t *testing.T) {
	m := newModel(1024)
	m.txs(20)
	st := memstore.New()
	m.putSnapshot(t, st, "app.db", 20)
	m.putSnapshot(t, st, "sub/dir/other.db", 10)
	withUmask(t, 0)
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := RestoreAll(context.Background(), st, dir, AllOptions{Options: restoreOpts()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want fs.FileMode
	}{
		{"", 0o700},
		{"app.db", 0o600},
		{"sub", 0o700},
		{"sub/dir", 0o700},
		{"sub/dir/other.db", 0o600},
	} {
		if got := perm(t, filepath.Join(dir, filepath.FromSlash(tc.path))); got != tc.want {
			t.Errorf("%s/%s: mode %v, want %v", filepath.Base(dir), tc.path, got, tc.want)
		}
	}
}
