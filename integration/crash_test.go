package integration

import (
	"bufio"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// ackWriterScript commits one row per transaction and prints each id once
// SQLite has acknowledged the commit. argv: db start_id journal_mode
const ackWriterScript = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
c.execute("pragma journal_mode=%s" % sys.argv[3])
c.execute("create table if not exists acks(id integer primary key, v blob)")
# A commit whose write failed when walfs died may still be in the WAL and
# replayed by recovery (or, in rollback-journal mode, rolled back) (the usual "commit failed, state unknown" case): it was
# never acknowledged, so just continue after it.
i = max(int(sys.argv[2]), (c.execute("select max(id) from acks").fetchone()[0] or 0) + 1)
try:
    while True:
        c.execute("insert into acks(id, v) values (?, randomblob(200))", (i,))
        print(i, flush=True)
        i += 1
except Exception as e:
    print("stopped:", e, file=sys.stderr, flush=True)
`

// TestKill9LosesNothing kills walfs at random instants while a writer
// commits, restarts it on the same data dir, and checks that every commit
// SQLite acknowledged reaches the replica, in WAL mode and in the
// rollback-journal modes.
func TestKill9LosesNothing(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	for _, tc := range []struct {
		journal string
		rounds  int
	}{{"wal", 8}, {"delete", 5}, {"persist", 5}} {
		t.Run(tc.journal, func(t *testing.T) {
			rounds := tc.rounds
			if testing.Short() {
				rounds = 3
			}
			kill9Rounds(t, srv, tc.journal, rounds)
		})
	}
}

func kill9Rounds(t *testing.T, srv *testserver.Server, journal string, rounds int) {
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	replica := s3URL(srv, "crash-"+journal)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	maxAck := 0
	mnt := ""
	for round := 0; round < rounds; round++ {
		var m *mountProc
		if mnt == "" {
			m = startMountEnv(t, env, dataDir, replica)
			mnt = m.Mnt
		} else {
			m = restartMount(t, env, dataDir, replica, mnt)
		}
		db := filepath.Join(m.Mnt, "acks.db")
		w := exec.Command("python3", "-c", ackWriterScript, db, strconv.Itoa(maxAck+1), journal)
		var werr syncBuffer
		w.Stderr = &werr
		out, err := w.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan int, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
					acks <- n
				}
			}
			close(acks)
		}()
		// Let it run a random while, then crash walfs.
		deadline := time.After(time.Duration(200+rng.Intn(1500)) * time.Millisecond)
		func() {
			for {
				select {
				case n, ok := <-acks:
					if !ok {
						return
					}
					maxAck = max(maxAck, n)
				case <-deadline:
					m.Kill()
					return
				}
			}
		}()
		for n := range acks {
			maxAck = max(maxAck, n)
		}
		w.Process.Kill()
		w.Wait()
		t.Logf("round %d: killed walfs; %d commits acknowledged so far (writer: %s)", round, maxAck, strings.TrimSpace(werr.String()))
	}
	// Final restart: walfs finds what was committed locally and uploads it.
	m := restartMount(t, env, dataDir, replica, mnt)
	m.Sync()
	m.Unmount()
	restored := restoreToEnv(t, env, s3URL(srv, "crash-"+journal+"/acks.db"))
	got := py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
n = int(sys.argv[2])
missing = c.execute("select count(*) from (with recursive s(i) as (select 1 union all select i+1 from s where i < ?) select i from s where i not in (select id from acks))", (n,)).fetchone()[0]
print(missing)
`, restored, strconv.Itoa(maxAck))
	if strings.TrimSpace(got) != "0" {
		t.Fatalf("%s of %d acknowledged commits are missing from the replica", strings.TrimSpace(got), maxAck)
	}
	if maxAck == 0 {
		t.Fatal("writer never committed anything")
	}
	t.Logf("%s mode: %d rounds of kill -9, %d acknowledged commits, 0 lost", journal, rounds, maxAck)
}

// restartMount starts walfs again on a data dir whose previous mount was
// killed, at the same mount point (left dead: walfs must clear it itself).
func restartMount(t *testing.T, env []string, dataDir, replica, mnt string) *mountProc {
	t.Helper()
	return startMountAt(t, env, dataDir, replica, mnt)
}
