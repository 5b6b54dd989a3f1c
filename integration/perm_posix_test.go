package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// TestPermPosix re-runs its test binary for one posixtest case in a
// directory named by these variables.
const (
	posixCaseEnv = "WALFS_POSIXTEST_CASE"
	posixDirEnv  = "WALFS_POSIXTEST_DIR"
)

// permPosixKnownDifferences are posixtest cases that pass on the disk but
// fail in the mount, each with the reason we accept it. A listed case that
// no longer differs fails the test.
var permPosixKnownDifferences = map[string]string{}

// go-fuse's posixtest cases behave in the mount as on a plain directory of
// the same disk. Each case runs in a child process per tree, so a failure
// is recorded, compared and reported instead of failing the test by itself:
// a case that fails on the disk too says nothing about walfs.
func TestPermPosix(t *testing.T) {
	if name, ok := os.LookupEnv(posixCaseEnv); ok {
		// The child: one case, in the directory the parent made.
		posixtest.All[name](t, os.Getenv(posixDirEnv))
		return
	}
	requireEnv(t)
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) { testPermPosix(t, capture) })
	}
}

func testPermPosix(t *testing.T, capture string) {
	base := t.TempDir()
	disk := filepath.Join(base, "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, filepath.Join(base, "data"), "file://"+filepath.Join(base, "replica"), "--capture", capture)
	requireSameFS(t, disk, filepath.Join(base, "data"))
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	var same, differ int
	for _, name := range names {
		onDisk, diskOut := runPosixCase(t, name, disk)
		inMount, mountOut := runPosixCase(t, name, m.Mnt)
		why, known := permPosixKnownDifferences[name]
		switch {
		case onDisk == inMount:
			same++
			t.Logf("%-32s disk %-4s mount %s", name, passFail(onDisk), passFail(inMount))
			if known {
				t.Errorf("permPosixKnownDifferences lists %s (%s), but it no longer differs: remove it", name, why)
			}
		case onDisk && known:
			differ++
			t.Logf("%-32s disk PASS mount FAIL (known: %s)", name, why)
		case onDisk:
			differ++
			t.Errorf("%s passes on the disk but fails in the mount:\n%s", name, mountOut)
		default:
			differ++
			t.Logf("%-32s disk FAIL mount PASS; on the disk:\n%s", name, diskOut)
		}
	}
	t.Logf("posixtest cases: %d, same on disk and mount: %d, different: %d", len(names), same, differ)
	m.Unmount()
}

func passFail(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// runPosixCase runs one posixtest case in a fresh subdirectory of parent,
// in a child process, and reports whether it passed, with its output.
func runPosixCase(t *testing.T, name, parent string) (bool, string) {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-test.run=^TestPermPosix$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), posixCaseEnv+"="+name, posixDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("posixtest %s in %s did not finish within 2 minutes:\n%s", name, parent, out)
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run posixtest %s: %v", name, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("clean up after %s in %s: %v", name, parent, err)
	}
	return err == nil, strings.TrimSpace(string(out))
}
