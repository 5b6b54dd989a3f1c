package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// nobody is the uid and gid the permission test reads as when it runs as
// root (CI does): root's CAP_DAC_OVERRIDE would open a mode-0 file.
const nobody = 65534

func TestLoadPermissionDenied(t *testing.T) {
	dir := t.TempDir()
	// t.TempDir and its parent are 0700: open them so that the file's own
	// mode, not the path to it, is what denies nobody.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "walfs.yml")
	if err := os.WriteFile(path, []byte("data-dir: /d\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	var err error
	if os.Geteuid() == 0 {
		err = loadAsNobody(t, path)
	} else {
		_, err = Load(path)
	}
	want := "config file " + path + ": permission denied (check the file's owner and mode, and the user walfs runs as)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(err, fs.ErrPermission) = false")
	}
}

// loadAsNobody runs Load on a thread of its own whose file-system uid and
// gid are nobody's; leaving uid 0 drops the thread's CAP_DAC_OVERRIDE
// (capabilities(7)). The thread goes back to the runtime only once it is
// root again; otherwise its goroutine exits locked and the thread dies.
func loadAsNobody(t *testing.T, path string) error {
	t.Helper()
	type result struct{ load, setup error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := setFSID(nobody); err != nil {
			if setFSID(0) == nil {
				runtime.UnlockOSThread()
			}
			done <- result{setup: err}
			return
		}
		_, err := Load(path)
		if restore := setFSID(0); restore != nil {
			done <- result{load: err, setup: restore}
			return
		}
		runtime.UnlockOSThread()
		done <- result{load: err}
	}()
	r := <-done
	if r.setup != nil {
		t.Fatal(r.setup)
	}
	return r.load
}

// setFSID sets the calling thread's file-system gid and uid. The calls
// report no errors, only the previous value: setting again proves the
// first took.
func setFSID(id uintptr) error {
	for _, c := range []struct {
		name string
		nr   uintptr
	}{{"setfsgid", syscall.SYS_SETFSGID}, {"setfsuid", syscall.SYS_SETFSUID}} {
		syscall.RawSyscall(c.nr, id, 0, 0)
		if got, _, _ := syscall.RawSyscall(c.nr, id, 0, 0); got != id {
			return fmt.Errorf("%s %d did not take", c.name, id)
		}
	}
	return nil
}
