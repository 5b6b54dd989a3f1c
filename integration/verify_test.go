package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// walfs verify proves that each database's latest point in the replica is
// the live database, a WAL database with committed frames not yet
// checkpointed included; it names a database whose replica was damaged
// behind walfs's back, repairs it with a new snapshot, and then proves it
// again. walfs sync --verify does the same after its flush, and walfs verify
// --data-dir compares the files of an unmounted data dir.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
	replica := "file://" + replicaDir
	m := startMount(t, dataDir, replica)
	walDB, journalDB := filepath.Join(m.Mnt, "wal.db"), filepath.Join(m.Mnt, "rollback.db")
	py(t, `
import sqlite3, sys
for path, mode in ((sys.argv[1], "wal"), (sys.argv[2], "delete")):
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("pragma journal_mode=" + mode)
    c.execute("create table t(id integer primary key, v blob)")
    for i in range(30):
        c.execute("insert into t(v) values (randomblob(500))")
    c.close()
`, walDB, journalDB)
	// The first upload of each (a snapshot) now, so that the commits below
	// go up as level-0 objects, the newest of which is damaged below.
	m.Sync()

	// A writer keeps wal.db open with checkpoints off: the committed state
	// is in the WAL, not in the db file.
	holder := exec.Command("python3", "-c", `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma wal_autocheckpoint=0")
for i in range(50):
    c.execute("insert into t(v) values (randomblob(700))")
print("ready", flush=True)
sys.stdin.read()
for i in range(10):
    c.execute("insert into t(v) values (randomblob(700))")
`, walDB)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); holder.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("writer: %q, %v", line, err)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "wal.db-wal")); err != nil || fi.Size() < 50*700 {
		t.Fatalf("wal.db-wal should hold the writer's commits: %v", err)
	}

	lines := walfsLines(t, 0, "verify", m.Mnt)
	requireLines(t, lines, map[string]string{walDB: "equal at TXID", journalDB: "equal at TXID"})

	// Damage both replicas behind the mount's back: wal.db loses its
	// newest object, rollback.db's newest object records another checksum.
	walReplica, journalReplica := filepath.Join(replicaDir, "wal.db"), filepath.Join(replicaDir, "rollback.db")
	if err := os.Remove(newestObject(t, walReplica)); err != nil {
		t.Fatal(err)
	}
	flipTrailer(t, newestObject(t, journalReplica))

	lines = walfsLines(t, 1, "verify", "--no-repair", m.Mnt)
	requireLines(t, lines, map[string]string{walDB: "DIFFERENT", journalDB: "DIFFERENT"})
	requireLines(t, lines, map[string]string{walDB: "objects are missing", journalDB: "the live database has checksum"})

	lines = walfsLines(t, 1, "verify", m.Mnt)
	requireLines(t, lines, map[string]string{walDB: "; repaired: new snapshot at TXID", journalDB: "; repaired: new snapshot at TXID"})
	repairs := waitRepaired(t, m.Mnt, map[string]uint64{"wal.db": 1, "rollback.db": 1})
	for _, db := range []string{"wal.db", "rollback.db"} {
		if want := "replica of " + db + " was inconsistent ("; !strings.Contains(m.log.String(), want) {
			t.Errorf("mount log lacks %q", want)
		}
		if r := repairs[db].LastRepair; r != nil {
			t.Logf("%s repaired: new snapshot at TXID %d because %s", db, r.TXID, r.Why)
		}
	}
	requireLines(t, walfsLines(t, 0, "verify", m.Mnt), map[string]string{walDB: "equal at TXID", journalDB: "equal at TXID"})

	// The repaired replicas carry on: more commits, then sync --verify.
	stdin.Close()
	if err := holder.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for i in range(10):
    c.execute("insert into t(v) values (randomblob(500))")
`, journalDB)
	requireLines(t, walfsLines(t, 0, "sync", "--verify", m.Mnt), map[string]string{walDB: "equal at TXID", journalDB: "equal at TXID"})

	flipTrailer(t, newestObject(t, journalReplica))
	lines = walfsLines(t, 1, "sync", "--verify", m.Mnt)
	requireLines(t, lines, map[string]string{walDB: "equal at TXID", journalDB: "; repaired: new snapshot at TXID"})
	waitRepaired(t, m.Mnt, map[string]uint64{"wal.db": 1, "rollback.db": 2})
	requireLines(t, walfsLines(t, 0, "sync", "--verify", m.Mnt), map[string]string{walDB: "equal at TXID", journalDB: "equal at TXID"})

	for _, db := range []string{"wal.db", "rollback.db"} {
		requireSameDB(t, filepath.Join(m.Mnt, db), restoreTo(t, replica+"/"+db))
	}
	m.Unmount()

	// Without a mount, the files on disk are compared.
	requireLines(t, walfsLines(t, 0, "verify", "--data-dir", dataDir, "--replica", replica), map[string]string{
		filepath.Join(dataDir, "wal.db"): "equal at TXID", filepath.Join(dataDir, "rollback.db"): "equal at TXID"})
}

// walfsLines runs walfs with args, requires exit status code, and returns the
// lines of its standard output.
func walfsLines(t *testing.T, code int, args ...string) []string {
	t.Helper()
	cmd := exec.Command(walfsBin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	got := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if got != code {
		t.Fatalf("walfs %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, stderr.String())
	}
	t.Logf("walfs %s (exit %d):\n%s%s", strings.Join(args, " "), got, out, stderr.String())
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// requireLines requires one line per database, each starting with its path
// and containing what want says.
func requireLines(t *testing.T, lines []string, want map[string]string) {
	t.Helper()
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want one per database (%d):\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for path, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, path+": ") {
				found = true
				if !strings.Contains(l, w) {
					t.Errorf("line of %s lacks %q: %s", path, w, l)
				}
			}
		}
		if !found {
			t.Errorf("no line for %s:\n%s", path, strings.Join(lines, "\n"))
		}
	}
}

type repairStatus struct {
	Repairs    uint64 `json:"repairs"`
	LastRepair *struct {
		TXID uint64 `json:"txid"`
		Why  string `json:"why"`
	} `json:"last_repair"`
}

// waitRepaired polls walfs status --json (bounded) until each database
// has counted want repairs, and returns what it says of them.
func waitRepaired(t *testing.T, mnt string, want map[string]uint64) map[string]repairStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(walfsBin, "status", "--json", mnt).Output()
		if err != nil {
			t.Fatalf("walfs status: %v\n%s", err, out)
		}
		var reps []struct {
			Databases []struct {
				DB string `json:"db"`
				repairStatus
			} `json:"databases"`
		}
		if err := json.Unmarshal(out, &reps); err != nil || len(reps) != 1 {
			t.Fatalf("walfs status --json: %v\n%s", err, out)
		}
		got := map[string]repairStatus{}
		done := true
		for _, d := range reps[0].Databases {
			got[d.DB] = d.repairStatus
		}
		for db, n := range want {
			if got[db].Repairs != n || (n > 0 && got[db].LastRepair == nil) {
				done = false
			}
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("repairs in status: %+v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newestObject returns the path of the object with the highest TXID in a
// database's file replica (any level).
func newestObject(t *testing.T, dbDir string) string {
	t.Helper()
	var newest string
	var newestTXID uint64
	for _, level := range []string{"0009", "0003", "0002", "0001", "0000"} {
		entries, err := os.ReadDir(filepath.Join(dbDir, level))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".ltx")
			if !ok || len(name) != 33 {
				continue
			}
			txid, err := strconv.ParseUint(name[17:], 16, 64)
			if err == nil && txid > newestTXID {
				newest, newestTXID = filepath.Join(dbDir, level, e.Name()), txid
			}
		}
	}
	if newest == "" {
		t.Fatalf("no objects in %s", dbDir)
	}
	return newest
}

// flipTrailer changes the post-apply checksum an object records.
func flipTrailer(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4)
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	off := end - 16 + 2 // the trailer: post-apply checksum (8 bytes), then the file's CRC
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0x5a
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
