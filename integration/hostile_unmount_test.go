package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// holderScript keeps app.db open in the mount and commits one row for each
// line it reads on stdin; it prints "ok N" after each commit and exits when
// stdin closes.
const holderScript = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table if not exists t(id integer primary key, v text)")
n = 0
for line in sys.stdin:
    n += 1
    c.execute("insert into t(v) values (?)", (line.strip(),))
    print("ok", n, flush=True)
c.close()
print("closed", flush=True)
`

// holder is a python3 process holding a database open in the mount.
type holder struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	count int
}

func startHolder(t *testing.T, db string) *holder {
	t.Helper()
	cmd := exec.Command("python3", "-c", holderScript, db)
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
	h := &holder{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		h.in.Close()
		h.cmd.Process.Kill()
		h.cmd.Wait()
	})
	return h
}

// commit has the holder commit one row and waits for SQLite's answer.
func (h *holder) commit(v string) {
	h.t.Helper()
	h.count++
	if _, err := io.WriteString(h.in, v+"\n"); err != nil {
		h.t.Fatal(err)
	}
	if !h.out.Scan() || h.out.Text() != "ok "+strconv.Itoa(h.count) {
		h.t.Fatalf("holder: want \"ok %d\", got %q (%v)", h.count, h.out.Text(), h.out.Err())
	}
}

// close closes the database and waits for the process to exit.
func (h *holder) close() {
	h.t.Helper()
	h.in.Close()
	if !h.out.Scan() || h.out.Text() != "closed" {
		h.t.Fatalf("holder: want \"closed\", got %q", h.out.Text())
	}
	if err := h.cmd.Wait(); err != nil {
		h.t.Fatalf("holder: %v", err)
	}
}

// `walfs unmount` refuses while files are open, naming who holds them, and
// the mount keeps working; `--lazy` flushes, detaches, and whatever the
// holder commits before it lets go still reaches the replica.
func TestUnmountWithOpenFiles(t *testing.T) {
	for _, capture := range []string{"passthrough", "userspace"} {
		t.Run(capture, func(t *testing.T) { testUnmountWithOpenFiles(t, capture) })
	}
}

func testUnmountWithOpenFiles(t *testing.T, capture string) {
	dir := t.TempDir()
	dataDir, replica := filepath.Join(dir, "data"), "file://"+filepath.Join(dir, "replica")
	m := startMount(t, dataDir, replica, "--capture", capture)
	h := startHolder(t, filepath.Join(m.Mnt, "app.db"))
	h.commit("before unmount")

	out, err := runWalfs(t, "unmount", "--timeout", "10s", m.Mnt)
	if err == nil {
		t.Fatalf("walfs unmount succeeded with app.db open:\n%s", out)
	}
	comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.cmd.Process.Pid), "comm"))
	for _, want := range []string{"pid " + strconv.Itoa(h.cmd.Process.Pid), "(" + strings.TrimSpace(string(comm)) + ")", "app.db", "--lazy"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1 {
		t.Errorf("refusal has %d lines, want 1:\n%s", lines, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(out))
	if !isMounted(m.Mnt) {
		t.Fatal("refused unmount left the mount gone")
	}

	// Still a working mount: the holder and a newcomer both commit, and
	// sync still answers.
	h.commit("after refused unmount")
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("insert into t(v) values ('from another process')")
c.close()
`, filepath.Join(m.Mnt, "app.db"))
	m.Sync()

	// --lazy: the final flush, then the mount leaves the namespace while
	// the holder's descriptor keeps working.
	if out, err := runWalfs(t, "unmount", "--lazy", "--timeout", "10s", m.Mnt); err != nil {
		t.Fatalf("walfs unmount --lazy: %v\n%s", err, out)
	}
	if isMounted(m.Mnt) {
		t.Fatal("mount still in the mount table after --lazy")
	}
	restoredAtDetach := restoreTo(t, replica+"/app.db")
	if got := strings.TrimSpace(py(t, `import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0])`, restoredAtDetach)); got != "3" {
		t.Errorf("replica at detach holds %s rows, want the 3 committed before it", got)
	}
	h.commit("after lazy detach")
	h.close()
	select {
	case err := <-m.done:
		m.done <- err
		if err != nil {
			t.Errorf("walfs mount exited with %v after the last holder closed (want 0: everything uploaded)\n%s", err, m.log)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("walfs mount still running 60s after the last file closed\n%s", m.log)
	}
	requireSameDB(t, filepath.Join(dataDir, "app.db"), restoreTo(t, replica+"/app.db"))
}
