package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestCheckPeer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		uid, owner uint32
		want       string // "" for allowed
	}{
		{"owner", 1000, 1000, ""},
		{"root controls a user's mount", 0, 1000, ""},
		{"root's own mount", 0, 0, ""},
		{"other user", 65534, 1000, "only uid 1000 or root may control this mount"},
		{"user against root's mount", 1000, 0, "only uid 0 or root may control this mount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := checkPeer(tc.uid, tc.owner); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("checkPeer(%d, %d) = %q, want %q", tc.uid, tc.owner, got, tc.want)
			}
		})
	}
}

// The socket is 0600 even when the mount runs with umask 0, and its owner
// can use it.
func TestControlSocketPrivate(t *testing.T) {
	old := syscall.Umask(0) // no test in this package runs in parallel
	t.Cleanup(func() { syscall.Umask(old) })
	stateDir := t.TempDir()
	var flushed atomic.Bool
	ctl, err := startControl(stateDir, slog.New(slog.DiscardHandler), nil, func(context.Context, time.Duration) error {
		flushed.Store(true)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	fi, err := os.Lstat(filepath.Join(stateDir, controlSocketName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), fs.FileMode(0o600); got != want {
		t.Errorf("socket mode %v, want %v", got, want)
	}
	if err := callControl(t.Context(), stateDir, "flush", unmountRequest{}); err != nil {
		t.Fatalf("owner's flush: %v", err)
	}
	if !flushed.Load() {
		t.Error("owner's flush did not reach the handler")
	}
}

// Environment of the client process of TestControlRefusesOtherUsers.
const (
	envControlClientDir = "WALFS_TEST_CONTROL_CLIENT_DIR" // state dir to call
	envControlClientUID = "WALFS_TEST_CONTROL_CLIENT_UID" // uid to become first, if set
)

// A process of another user (not root) reaches the socket but is refused
// by its peer credentials, which it cannot forge, and no handler runs.
func TestControlRefusesOtherUsers(t *testing.T) {
	if dir := os.Getenv(envControlClientDir); dir != "" {
		controlClientProcess(t, dir)
		return
	}
	// As root, the mount is root's and the client drops to nobody. As
	// another user, the mount claims to belong to someone else and the
	// client stays this user: either way a real SO_PEERCRED refuses it.
	owner := uint32(os.Geteuid())
	var clientEnv []string
	if owner == 0 {
		clientEnv = []string{envControlClientUID + "=65534"}
	} else {
		owner++
	}
	stateDir, err := os.MkdirTemp("", "walfs-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stateDir) })
	// Open the way so only the credential check stands between the client
	// and the handlers (the 0700 state dir and 0600 socket would stop it
	// first in a real mount).
	if err := os.Chmod(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var reached atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { reached.Store(true) })
	ctl, err := listenControl(filepath.Join(stateDir, controlSocketName), owner, mux, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	if err := os.Chmod(filepath.Join(stateDir, controlSocketName), 0o666); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestControlRefusesOtherUsers$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(clientEnv, envControlClientDir+"="+stateDir)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client process: %v\n%s", err, out)
	}
	want := fmt.Sprintf("flush: only uid %d or root may control this mount\nstatus: 403 walfs: only uid %d or root may control this mount\n", owner, owner)
	got := clientLines(string(out))
	if got != want {
		t.Errorf("client got:\n%s\nwant:\n%s", got, want)
	}
	if reached.Load() {
		t.Error("a refused request reached a handler")
	}
}

// controlClientProcess is the client side of TestControlRefusesOtherUsers:
// it becomes the requested user, calls the socket as `walfs sync` and
// `walfs status` would, and prints what it got.
func controlClientProcess(t *testing.T, stateDir string) {
	if s := os.Getenv(envControlClientUID); s != "" {
		uid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		// Go applies these to every thread of the process.
		if err := syscall.Setgroups(nil); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setgid(uid); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(uid); err != nil {
			t.Fatal(err)
		}
	}
	err := callControl(t.Context(), stateDir, "flush", unmountRequest{})
	fmt.Printf("client: flush: %v\n", err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://walfs/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := controlClient(filepath.Join(stateDir, controlSocketName)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	fmt.Printf("client: status: %d %s\n", resp.StatusCode, strings.TrimSpace(string(body[:n])))
}

// clientLines keeps the lines the client process printed about its calls,
// without the test framework's own output.
func clientLines(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "client: "); ok {
			b.WriteString(rest + "\n")
		}
	}
	return b.String()
}
