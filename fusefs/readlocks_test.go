package fusefs

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// holdWALScript keeps a WAL connection open and, for each line on stdin,
// commits 20 rows and runs the checkpoint the line names ("passive" or
// "truncate", without a busy timeout), printing "busy log checkpointed".
const holdWALScript = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
c.execute("pragma journal_mode=wal")
c.execute("pragma wal_autocheckpoint=0")
c.execute("create table t(v)")
print("ready", flush=True)
for line in sys.stdin:
    for i in range(20):
        c.execute("insert into t values (randomblob(500))")
    print(*c.execute("pragma wal_checkpoint(%s)" % line.strip()).fetchone(), flush=True)
`

// While HoldWAL's locks are held, SQLite's writers go on committing but no
// checkpoint copies frames into the database file or restarts the WAL; once
// released, checkpoints work again. Real SQLite (python's) through the mount.
func TestHoldWALHoldsOffCheckpoints(t *testing.T) {
	requireMount(t)
	dir := t.TempDir()
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := mountRecorder(t, data, mnt)
	if _, shm, why := m.HoldWAL("app.db"); shm || why != "" {
		t.Fatalf("HoldWAL on a database with no -shm: shm %v, why %q; want nothing to hold", shm, why)
	}

	cmd := exec.Command(python3, "-c", holdWALScript, filepath.Join(mnt, "app.db"))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	step := func(ckpt string) []string {
		t.Helper()
		if ckpt != "" {
			if _, err := in.Write([]byte(ckpt + "\n")); err != nil {
				t.Fatal(err)
			}
		}
		if !lines.Scan() {
			t.Fatalf("the SQLite process stopped: %v", lines.Err())
		}
		return strings.Fields(lines.Text())
	}
	if got := step(""); len(got) != 1 || got[0] != "ready" {
		t.Fatalf("SQLite process: %q", got)
	}
	dbBytes := func() []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(data, "app.db"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	release, shm, why := m.HoldWAL("app.db")
	if !shm || why != "" {
		t.Fatalf("HoldWAL: shm %v, why %q; want the -shm held", shm, why)
	}
	before := dbBytes()
	if got := step("passive"); len(got) != 3 || got[0] != "0" || got[1] == got[2] {
		t.Errorf("passive checkpoint while held: busy, log, checkpointed = %q; want frames left in the WAL", got)
	}
	if got := step("truncate"); len(got) != 3 || got[0] != "1" {
		t.Errorf("truncate checkpoint while held: busy, log, checkpointed = %q; want busy", got)
	}
	if !bytes.Equal(dbBytes(), before) {
		t.Errorf("the database file changed while HoldWAL held it")
	}
	release()
	if got := step("truncate"); len(got) != 3 || got[0] != "0" || got[1] != "0" {
		t.Errorf("truncate checkpoint after release: busy, log, checkpointed = %q; want the WAL copied and cut", got)
	}
	if bytes.Equal(dbBytes(), before) {
		t.Errorf("the database file is unchanged after a checkpoint")
	}
}
