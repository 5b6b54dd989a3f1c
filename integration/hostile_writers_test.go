package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// hostileStepScript applies one random step to the databases of a mount:
// SQLite work from one or several processes, or file operations that do not
// follow SQLite's protocol (copies over live paths, renames over, truncated
// and damaged WALs, writers killed mid-transaction, deletes and fast
// re-creation). Every step leaves files that SQLite can open; what it reads
// from them is the truth the replica must match.
// argv: mnt seed step journal page_size. Prints the step's description.
const hostileStepScript = `
import os, random, shutil, signal, sqlite3, subprocess, sys, time
mnt, seed, step, journal, page_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rnd = random.Random(seed * 100003 + step)
names = ["a.db", "b.db", "c.db", "d.db"]
P = lambda n: os.path.join(mnt, n)

def rm(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass

def connect(name):
    c = sqlite3.connect(P(name), isolation_level=None, timeout=20)
    if c.execute("pragma page_count").fetchone()[0] == 0:
        c.execute("pragma page_size=%d" % page_size)
    c.execute("pragma journal_mode=%s" % journal)
    c.execute("create table if not exists t(id integer primary key, k integer, v blob)")
    return c

def work(name, n):
    c = connect(name)
    for _ in range(n):
        op = rnd.choice(["ins", "ins", "upd", "del", "big"])
        c.execute("begin")
        if op == "ins":
            for _ in range(rnd.randint(1, 30)):
                c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 999), rnd.randbytes(rnd.randint(0, 400))))
        elif op == "upd":
            c.execute("update t set v = ?, k = k + 1 where k % ? = 0", (rnd.randbytes(60), rnd.randint(2, 7)))
        elif op == "del":
            c.execute("delete from t where k % ? = 1", (rnd.randint(3, 9),))
        else:
            c.execute("pragma cache_size=4")
            for _ in range(rnd.randint(100, 300)):
                c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 999), rnd.randbytes(rnd.randint(200, 900))))
        c.execute("commit")
    c.close()

def hold(name):
    # A connection that keeps its committed frames in the WAL (WAL mode):
    # the next close would checkpoint and remove it.
    c = connect(name)
    c.execute("pragma wal_autocheckpoint=0")
    c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 999), rnd.randbytes(200)))
    return c

def kill_mid_transaction(name, rows):
    # A writer that spills pages of an open transaction, killed with -9.
    connect(name).close()
    code = "\n".join([
        "import sqlite3, sys",
        "c = sqlite3.connect(%r, isolation_level=None, timeout=20)" % P(name),
        "c.execute('pragma cache_size=2')",
        "c.execute('begin')",
        "for i in range(%d):" % rows,
        "    c.execute('insert into t(k, v) values (?, randomblob(700))', (i,))",
        "print('ready', flush=True)",
        "sys.stdin.read()",
    ])
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if p.stdout.readline().strip() != b"ready":
        sys.exit("writer for %s did not start" % name)
    p.send_signal(signal.SIGKILL)
    p.wait()

existing = [n for n in names if os.path.exists(P(n))]
src = rnd.choice(existing) if existing else None
dst = rnd.choice(names)
action = rnd.choice(["sql", "sql", "sql", "multi", "copy_pair", "rename_over", "truncate_wal", "flip_copy", "kill_writer", "kill_delete", "delete", "recreate", "extend"])
if not existing or (action in ("copy_pair", "rename_over", "flip_copy") and src == dst):
    action = "sql"
desc = action

if action == "sql":
    work(dst, rnd.randint(1, 6))
    desc += " " + dst
elif action == "multi":
    connect(dst).close()
    child = "import sys\nexec(sys.stdin.read())"
    procs = []
    for i in range(3):
        code = "\n".join([
            "import sqlite3, random",
            "c = sqlite3.connect(%r, isolation_level=None, timeout=20)" % P(dst),
            "r = random.Random(%d)" % rnd.randint(0, 10**9),
            "for _ in range(15):",
            "    c.execute('begin immediate')",
            "    c.execute('insert into t(k, v) values (?, ?)', (r.randint(0, 999), r.randbytes(r.randint(0, 300))))",
            "    c.execute('commit')",
        ])
        p = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE)
        p.stdin.write(code.encode()); p.stdin.close()
        procs.append(p)
    for p in procs:
        if p.wait() != 0:
            sys.exit("multi: a writer failed")
    desc += " " + dst
elif action == "copy_pair":
    # A db and its WAL copied over live paths (a backup put back by hand),
    # while a connection to the source holds committed frames in its WAL.
    held = hold(src)
    for sfx in ("-journal", "-shm"):
        rm(P(dst) + sfx)
    shutil.copyfile(P(src), P(dst))
    if os.path.exists(P(src) + "-wal"):
        shutil.copyfile(P(src) + "-wal", P(dst) + "-wal")
    else:
        rm(P(dst) + "-wal")
    held.close()
    desc += " %s -> %s" % (src, dst)
elif action == "rename_over":
    # A new file renamed over the database (what editors and sync tools do);
    # only the db file: frames still in src's WAL are not part of it.
    tmp = P(dst) + ".tmp"
    shutil.copyfile(P(src), tmp)
    for sfx in ("-wal", "-journal", "-shm"):
        rm(P(dst) + sfx)
    os.rename(tmp, P(dst))
    desc += " %s -> %s" % (src, dst)
elif action == "truncate_wal":
    w = P(src) + "-wal"
    if os.path.exists(w) and os.path.getsize(w) > 32:
        size = rnd.randint(0, os.path.getsize(w))
        os.truncate(w, size)
        desc += " %s to %d" % (src, size)
    else:
        work(src, 1)
        desc += " (no wal) sql " + src
elif action == "flip_copy":
    # Copy a db and its WAL, flip one byte of the copy's WAL, open it: SQLite's
    # recovery stops at the damaged frame.
    held = hold(src)
    for sfx in ("-journal", "-shm", "-wal"):
        rm(P(dst) + sfx)
    shutil.copyfile(P(src), P(dst))
    held_wal = os.path.exists(P(src) + "-wal") and os.path.getsize(P(src) + "-wal") > 0
    if held_wal:
        shutil.copyfile(P(src) + "-wal", P(dst) + "-wal")
    held.close()
    if held_wal:
        with open(P(dst) + "-wal", "r+b") as f:
            f.seek(0, 2)
            off = rnd.randrange(f.tell())
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x5a]))
        desc += " %s -> %s at %d" % (src, dst, off)
    else:
        desc += " %s -> %s (no wal)" % (src, dst)
    c = sqlite3.connect(P(dst), timeout=20)
    c.execute("select count(*) from t").fetchone()
    c.close()
elif action == "kill_writer":
    kill_mid_transaction(dst, 400)
    desc += " " + dst
elif action == "kill_delete":
    # A writer killed mid-transaction leaves a hot journal; the database is
    # deleted, then the journal: a file the user can see, the user can delete.
    kill_mid_transaction(dst, 300)
    for sfx in ("", "-journal", "-wal", "-shm"):
        rm(P(dst) + sfx)
    desc += " " + dst
elif action == "delete":
    for sfx in ("", "-wal", "-journal", "-shm"):
        rm(P(dst) + sfx)
    desc += " " + dst
elif action == "recreate":
    # Delete and create again several times a second.
    for i in range(rnd.randint(3, 8)):
        for sfx in ("", "-wal", "-journal", "-shm"):
            rm(P(dst) + sfx)
        work(dst, rnd.randint(1, 3))
    desc += " " + dst
elif action == "extend":
    # Bytes appended past the database's end (SQLite ignores them).
    with open(P(src), "ab") as f:
        f.write(rnd.randbytes(rnd.randint(1, 3) * page_size))
    desc += " " + src
print(desc)
`

// liveDumpScript prints the canonical content of every database named in
// argv[2:] under argv[1], as SQLite reads it now: a read-write connection,
// so a hot journal is rolled back as any app's next open would. One JSON
// object: name -> dump.
const liveDumpScript = `
import json, sqlite3, sys, os
out = {}
for name in sys.argv[2:]:
    c = sqlite3.connect(os.path.join(sys.argv[1], name), timeout=20)
    lines = [c.execute("pragma integrity_check").fetchone()[0]]
    lines += list(c.iterdump())
    c.close()
    out[name] = "\n".join(lines) + "\n"
print(json.dumps(out))
`

// TestHostileWriters interleaves SQLite work from several processes with
// file operations that do not follow SQLite's protocol, and after every step
// requires, for every database in the mount, that `walfs sync` leaves a
// replica whose latest point restores to exactly what SQLite reads from the
// live files.
func TestHostileWriters(t *testing.T) {
	steps := 52
	if testing.Short() {
		steps = 10
	}
	total := 0
	for _, tc := range []struct {
		seed     int
		journal  string
		pageSize int
		capture  string
	}{
		{1, "wal", 4096, "passthrough"},
		{2, "delete", 1024, "userspace"},
		{3, "wal", 512, "userspace"},
		{4, "truncate", 65536, "passthrough"},
		{5, "persist", 4096, "passthrough"},
	} {
		t.Run(fmt.Sprintf("%s_page%d_%s", tc.journal, tc.pageSize, tc.capture), func(t *testing.T) {
			dir := t.TempDir()
			dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
			m := startMount(t, dataDir, "file://"+replicaDir, "--capture", tc.capture)
			for step := 0; step < steps; step++ {
				desc := strings.TrimSpace(py(t, hostileStepScript, m.Mnt, fmt.Sprint(tc.seed), fmt.Sprint(step), tc.journal, fmt.Sprint(tc.pageSize)))
				t.Logf("step %d: %s", step, desc)
				live := liveDumps(t, m)
				if step%5 == 4 {
					// Without a sync: the background reconciler and
					// uploaders catch up on their own.
					requireCaughtUp(t, m, 10*time.Second)
				}
				m.Sync()
				for _, name := range sortedKeys(live) {
					restored := restoreTo(t, "file://"+filepath.Join(replicaDir, name))
					if got := dump(t, restored); got != live[name] {
						t.Fatalf("step %d (%s): %s restores to something other than what SQLite reads:\n%s\nmount log:\n%s",
							step, desc, name, diffLines(live[name], got), tailLines(m.log.String(), 40))
					}
				}
				total++
			}
			requireCaughtUp(t, m, 10*time.Second)
			m.Unmount()
		})
	}
	t.Logf("hostile steps run: %d, mismatches: 0", total)
}

// liveDumps returns what SQLite reads from every database in the mount.
func liveDumps(t *testing.T, m *mountProc) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(m.Mnt)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{m.Mnt}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") && e.Type().IsRegular() {
			args = append(args, e.Name())
		}
	}
	out := map[string]string{}
	if err := json.Unmarshal([]byte(py(t, liveDumpScript, args...)), &out); err != nil {
		t.Fatal(err)
	}
	for name, d := range out {
		if !strings.HasPrefix(d, "ok\n") {
			t.Fatalf("live %s fails integrity_check (the step left a file SQLite cannot read): %s", name, firstLine(d))
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// requireCaughtUp polls `walfs status --json` until every database's
// replicated TXID equals its local TXID, failing after limit.
func requireCaughtUp(t *testing.T, m *mountProc, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var behind []string
		for _, d := range status(t, m.Mnt).Databases {
			if d.ReplicatedTXID != d.LocalTXID {
				behind = append(behind, fmt.Sprintf("%s (local %d, replicated %d)", d.DB, d.LocalTXID, d.ReplicatedTXID))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after the last step, databases still behind: %s", limit, strings.Join(behind, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
