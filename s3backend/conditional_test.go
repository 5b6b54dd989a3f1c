package s3backend_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/storetest"
)

func TestFileStoreConditionalConformance(t *testing.T) {
	storetest.RunConditional(t, func(t *testing.T) s3backend.Store {
		return s3backend.NewFileStore(filepath.Join(t.TempDir(), "replica"))
	})
}

// Environment of the helper process of TestFileStoreConditionalAcrossProcesses.
const (
	envCondHelperRoot = "WALFS_TEST_COND_HELPER_ROOT"
	envCondHelperN    = "WALFS_TEST_COND_HELPER_N"
)

// TestFileStoreConditionalAcrossProcesses: several processes increment one
// counter with Get + PutIfMatch. Without a lock that spans processes some
// increments would overwrite others; with it, the final count is exactly
// the number of successful PutIfMatch calls.
func TestFileStoreConditionalAcrossProcesses(t *testing.T) {
	if root := os.Getenv(envCondHelperRoot); root != "" {
		n, _ := strconv.Atoi(os.Getenv(envCondHelperN))
		// Start together with the other helpers so their cycles overlap.
		for {
			if _, err := os.Stat(filepath.Join(root, "go")); err == nil {
				break
			}
			time.Sleep(time.Millisecond) // poll interval of a cross-process barrier
		}
		wins, err := incrementCounter(t.Context(), s3backend.NewFileStore(root), n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("wins=%d\n", wins)
		return
	}
	root := filepath.Join(t.TempDir(), "replica")
	s := s3backend.NewFileStore(root)
	if _, err := s.PutIfAbsent(t.Context(), "counter.json", []byte("0")); err != nil {
		t.Fatal(err)
	}
	const procs, attempts = 4, 150
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFileStoreConditionalAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCondHelperRoot+"="+root, envCondHelperN+"="+strconv.Itoa(attempts))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	if err := os.WriteFile(filepath.Join(root, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i].String())
		}
		var wins int
		for _, line := range strings.Split(outs[i].String(), "\n") {
			if v, ok := strings.CutPrefix(line, "wins="); ok {
				wins, _ = strconv.Atoi(v)
			}
		}
		total += wins
	}
	body, _, err := s.Get(t.Context(), "counter.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(body), strconv.Itoa(total); got != want {
		t.Fatalf("counter = %s, want %s (the successful increments of %d processes)", got, want, procs)
	}
	if total == procs*attempts {
		t.Fatalf("all %d increments succeeded: the processes never raced, so this proves nothing", total)
	}
	t.Logf("%d processes, %d of %d increments succeeded (the rest lost a race and were refused), none lost", procs, total, procs*attempts)
}

// incrementCounter tries n read-increment-write cycles and returns how many
// of its conditional writes succeeded.
func incrementCounter(ctx context.Context, cw s3backend.ConditionalWriter, n int) (int, error) {
	wins := 0
	for range n {
		body, etag, err := cw.Get(ctx, "counter.json")
		if err != nil {
			return wins, err
		}
		v, err := strconv.Atoi(string(body))
		if err != nil {
			return wins, err
		}
		// Think time between read and write, as any real caller has: the
		// window in which another process may win.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		_, err = cw.PutIfMatch(ctx, "counter.json", []byte(strconv.Itoa(v+1)), etag)
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, s3backend.ErrPreconditionFailed):
			return wins, err
		}
	}
	return wins, nil
}

// The file lock waits only as long as the context allows.
func TestFileStoreConditionalLockHonoursContext(t *testing.T) {
	root := filepath.Join(t.TempDir(), "replica")
	s := s3backend.NewFileStore(root)
	if err := s.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := s3backend.LockFileStoreRoot(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.PutIfAbsent(ctx, "x.json", []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PutIfAbsent while another holder has the lock: got %v, want context.DeadlineExceeded", err)
	}
	release()
	if _, err := s.PutIfAbsent(t.Context(), "x.json", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent after the lock was released: %v", err)
	}
}
