package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// restore --all rebuilds the whole mount of a lost machine from a MinIO
// replica in one command, verified like a single restore, and is safe to run
// again.
func TestRestoreAllFromS3(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	replica := s3URL(srv, "walfs/prod")
	m := startMountEnv(t, env, dataDir, replica)
	py(t, writeAppScript, m.Mnt)
	m.Unmount()
	dbs := []string{"app.db", "sub/other.db"}

	// Dry run: a plan per database, nothing written.
	dir := filepath.Join(t.TempDir(), "restored")
	out, err := runWalfsEnv(t, env, "restore", "--all", "--dry-run", "--replica", replica, dir)
	if err != nil {
		t.Fatalf("restore --all --dry-run: %v\n%s", err, out)
	}
	for _, want := range []string{"plan for app.db → " + filepath.Join(dir, "app.db"), "plan for sub/other.db", "2 of 2 databases planned"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dry run created %s", dir)
	}

	out, err = runWalfsEnv(t, env, "restore", "--all", "--replica", replica, dir)
	if err != nil {
		t.Fatalf("restore --all: %v\n%s", err, out)
	}
	if !strings.Contains(out, "restored 2 of 2 databases into "+dir) {
		t.Errorf("summary missing:\n%s", out)
	}
	t.Logf("walfs restore --all:\n%s", out)
	for _, db := range dbs {
		requireSameDB(t, filepath.Join(dataDir, filepath.FromSlash(db)), filepath.Join(dir, filepath.FromSlash(db)))
	}

	// Again into the same tree: every output exists, so every database
	// fails and exit status is 1; --if-db-not-exists skips them instead.
	out, err = runWalfsEnv(t, env, "restore", "--all", "--replica", replica, dir)
	if err == nil || !strings.Contains(out, "2 failed") || !strings.Contains(out, "output exists") {
		t.Errorf("restore --all over existing outputs: %v\n%s", err, out)
	}
	out, err = walfsStdout(t, env, "restore", "--all", "--if-db-not-exists", "--json", "--replica", replica, dir)
	if err != nil {
		t.Fatalf("restore --all --if-db-not-exists: %v\n%s", err, out)
	}
	var sum struct {
		Skipped   int `json:"skipped"`
		Databases []struct {
			DB     string `json:"db"`
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if sum.Skipped != 2 || len(sum.Databases) != 2 || sum.Databases[1].DB != "sub/other.db" || sum.Databases[1].Reason != "output exists" {
		t.Errorf("--json summary %+v", sum)
	}

	// --json of a fresh restore carries each database's checksum.
	dir2 := filepath.Join(t.TempDir(), "again")
	out, err = walfsStdout(t, env, "restore", "--all", "--json", "--replica", replica, dir2)
	if err != nil {
		t.Fatalf("restore --all --json: %v\n%s", err, out)
	}
	var full struct {
		Restored  int `json:"restored"`
		Databases []struct {
			Status   string `json:"status"`
			Output   string `json:"output"`
			TXID     uint64 `json:"txid"`
			Checksum string `json:"checksum"`
			Verified bool   `json:"verified"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(out), &full); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if full.Restored != 2 {
		t.Fatalf("restored %d, want 2:\n%s", full.Restored, out)
	}
	for i, d := range full.Databases {
		if d.Status != "restored" || d.TXID == 0 || len(d.Checksum) != 16 || !d.Verified || d.Output != filepath.Join(dir2, filepath.FromSlash(dbs[i])) {
			t.Errorf("database %d: %+v", i, d)
		}
	}
}

// walfsStdout runs the walfs binary and returns its stdout alone (for
// --json); stderr goes into the error.
func walfsStdout(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, walfsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return string(out), err
}
