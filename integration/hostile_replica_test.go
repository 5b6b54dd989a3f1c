package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Damaged objects in a replica: `walfs restore` stops with the object's key
// named and leaves nothing at -o; a restore to a point before the damage
// still works.
func TestRestoreDamagedReplica(t *testing.T) {
	dir := t.TempDir()
	dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
	m := startMount(t, dataDir, "file://"+replicaDir)
	for i := 0; i < 5; i++ { // one level-0 object per sync after the first (a snapshot), at least
		py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table if not exists t(id integer primary key, v blob)")
for i in range(40):
    c.execute("insert into t(v) values (randomblob(3000))")
`, filepath.Join(m.Mnt, "app.db"))
		m.Sync()
	}
	m.Unmount()

	dbDir := filepath.Join(replicaDir, "app.db")
	l0 := ltxKeys(t, dbDir, "0000")
	snaps := ltxKeys(t, dbDir, "0009")
	if len(l0) < 4 || len(snaps) != 1 {
		t.Fatalf("want >= 4 level-0 objects and 1 snapshot, got %v and %v", l0, snaps)
	}
	mid, last, snap := l0[len(l0)/2], l0[len(l0)-1], snaps[0]
	size := func(key string) int64 {
		fi, err := os.Stat(filepath.Join(dbDir, key))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	cases := []struct {
		name   string
		damage func(root string) error // root is a copy of the database's replica dir
		want   []string
	}{
		{"page data of a level-0 object flipped", flipAt(mid, size(mid)/2), []string{mid, "corrupt"}},
		{"header of a level-0 object flipped", flipAt(mid, 50), []string{mid, "corrupt"}},
		{"trailer of the newest object flipped", flipAt(last, size(last)-8), []string{last, "corrupt"}},
		{"level-0 object cut in half", truncateTo(mid, size(mid)/2), []string{mid, "corrupt"}},
		{"level-0 object cut inside its header", truncateTo(mid, 50), []string{mid, "corrupt"}},
		{"level-0 object empty", truncateTo(mid, 0), []string{mid, "corrupt"}},
		{"level-0 object missing", remove(mid), []string{"gap", l0[len(l0)/2-1], l0[len(l0)/2+1]}},
		{"snapshot flipped", flipAt(snap, size(snap)-8), []string{snap, "corrupt"}},
		{"snapshot missing", remove(snap), []string{"no snapshot", l0[0]}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "replica")
			if out, err := exec.Command("cp", "-a", replicaDir, root).CombinedOutput(); err != nil {
				t.Fatalf("copy replica: %v\n%s", err, out)
			}
			if err := c.damage(filepath.Join(root, "app.db")); err != nil {
				t.Fatal(err)
			}
			outDir := t.TempDir()
			out, err := runWalfs(t, "restore", "-o", filepath.Join(outDir, "out.db"), "file://"+root+"/app.db")
			if err == nil {
				t.Fatalf("restore succeeded from a damaged replica:\n%s", out)
			}
			var msgs []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !logLine.MatchString(line) {
					msgs = append(msgs, line)
				}
			}
			if len(msgs) != 1 {
				t.Fatalf("want one error line, got:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(msgs[0], w) {
					t.Errorf("error lacks %q: %s", w, msgs[0])
				}
			}
			if left := listDir(outDir); len(left) > 0 {
				t.Errorf("left at -o's directory: %v", left)
			}
			t.Logf("%s", msgs[0])
		})
	}

	// A restore that needs none of the damaged objects still works.
	t.Run("earlier point before the damage", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "replica")
		if out, err := exec.Command("cp", "-a", replicaDir, root).CombinedOutput(); err != nil {
			t.Fatalf("copy replica: %v\n%s", err, out)
		}
		if err := flipAt(last, size(last)/2)(filepath.Join(root, "app.db")); err != nil {
			t.Fatal(err)
		}
		before := l0[len(l0)-2]
		txid := before[strings.IndexByte(before, '-')+1 : len(before)-len(".ltx")]
		restored := restoreTo(t, "file://"+root+"/app.db", "--txid", txid)
		n, _ := strconv.ParseUint(txid, 16, 64)
		t.Logf("restored TXID %d from a replica whose newest object is damaged: %s", n, strings.TrimSpace(py(t, `import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("pragma integrity_check").fetchone()[0])`, restored)))
	})
}

// ltxKeys lists the objects of one level, as "<level>/<name>.ltx", sorted.
func ltxKeys(t *testing.T, dbDir, level string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dbDir, level))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ltx") {
			keys = append(keys, level+"/"+e.Name())
		}
	}
	sort.Strings(keys)
	return keys
}

func flipAt(key string, off int64) func(string) error {
	return func(root string) error {
		f, err := os.OpenFile(filepath.Join(root, key), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		b := make([]byte, 4)
		if _, err := f.ReadAt(b, off); err != nil {
			return err
		}
		for i := range b {
			b[i] ^= 0x5a
		}
		_, err = f.WriteAt(b, off)
		return err
	}
}

func truncateTo(key string, size int64) func(string) error {
	return func(root string) error { return os.Truncate(filepath.Join(root, key), size) }
}

func remove(key string) func(string) error {
	return func(root string) error { return os.Remove(filepath.Join(root, key)) }
}

// An object of the live lineage vanishes from the replica while mounted
// (a bucket lifecycle rule, a careless cleanup): the engine must notice
// the gap and bridge it (a new snapshot) rather than carry on uploading
// objects no restore can reach; an unmount that reports success must leave
// a replica that restores to the latest commit.
func TestEngineRepairsGapInReplica(t *testing.T) {
	dir := t.TempDir()
	dataDir, replicaDir := filepath.Join(dir, "data"), filepath.Join(dir, "replica")
	m := startMount(t, dataDir, "file://"+replicaDir)
	write := func() {
		py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table if not exists t(id integer primary key, v blob)")
for i in range(20):
    c.execute("insert into t(v) values (randomblob(1000))")
`, filepath.Join(m.Mnt, "app.db"))
		m.Sync()
	}
	for i := 0; i < 4; i++ { // the first sync uploads a snapshot, each after it a level-0 object
		write()
	}
	l0 := ltxKeys(t, filepath.Join(replicaDir, "app.db"), "0000")
	if len(l0) < 3 {
		t.Fatalf("want >= 3 level-0 objects, got %v", l0)
	}
	if err := remove(l0[1])(filepath.Join(replicaDir, "app.db")); err != nil {
		t.Fatal(err)
	}
	write()
	write()
	m.Unmount() // verifies the replica; it must not call a broken lineage fine
	requireSameDB(t, filepath.Join(dataDir, "app.db"), restoreTo(t, "file://"+replicaDir+"/app.db"))
}
