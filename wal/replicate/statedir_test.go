package replicate

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMakeStateDir(t *testing.T) {
	old := syscall.Umask(0) // a mount's umask; no test here runs in parallel
	t.Cleanup(func() { syscall.Umask(old) })
	for _, tc := range []struct {
		name     string
		existing fs.FileMode // 0: not there yet
		want     fs.FileMode
	}{
		{"created", 0, 0o700},
		{"left wide by an older walfs", 0o755, 0o700},
		{"group-readable", 0o750, 0o700},
		{"already private", 0o700, 0o700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), StateDirName)
			if tc.existing != 0 {
				if err := os.Mkdir(dir, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := MakeStateDir(dir); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Errorf("mode %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMakeStateDirNotADir(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateDirName)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MakeStateDir(path); err == nil {
		t.Fatal("MakeStateDir on a file: got nil error, want one")
	}
}
