package integration

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// The real `litestream restore` v0.5.18 rebuilds a walfs replica in MinIO
// that holds many upload batches, a checkpoint and a mid-life snapshot (the
// database was changed while unmounted), to the same database walfs
// restores: at the latest point, at TXIDs on either side of the mid-life
// snapshot, on the snapshot itself, and at a timestamp.
func TestWalfsReplicaRestoresWithLitestream(t *testing.T) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	dataDir := filepath.Join(t.TempDir(), "data")
	const path = "walfs/ls/app.db"
	url := s3URL(srv, path)
	replica := s3URL(srv, "walfs/ls")

	m := startMountEnv(t, env, dataDir, replica, "--sync-interval", "100ms")
	db := filepath.Join(m.Mnt, "app.db")
	_, n := runWorkload(t, db, 2, 0)
	py(t, `import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma wal_checkpoint(TRUNCATE)")`, db)
	_, n = runWorkload(t, db, 2, n)
	m.Unmount()

	// Changed while unmounted: the next mount cannot prove the replica
	// matches and starts a new snapshot.
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("create table offline(x)")
c.execute("insert into offline values ('edited while unmounted')")
c.close()
`, filepath.Join(dataDir, "app.db"))
	m = startMountEnv(t, env, dataDir, replica, "--sync-interval", "100ms")
	mid, n := runWorkload(t, filepath.Join(m.Mnt, "app.db"), 3, n)
	m.Unmount()
	live := filepath.Join(dataDir, "app.db")

	levels := walfsLevels(t, env, url)
	snaps, l0 := levels[9].Objects, levels[0].Objects
	t.Logf("%d transactions: %d snapshots, %d level-0 files", n, len(snaps), len(l0))
	if len(snaps) < 2 || len(l0) < 20 {
		t.Fatalf("want a mid-life snapshot and at least 20 batches; have %d snapshots, %d level-0 files", len(snaps), len(l0))
	}
	second := snaps[len(snaps)-1].MaxTXID

	same := func(name string, walfsArgs, lsArgs []string) int {
		t.Helper()
		w := restoreToEnv(t, env, url, walfsArgs...)
		requireSameDB(t, w, litestreamRestoreArgs(t, srv, path, lsArgs...))
		k, _ := checkWorkload(t, w)
		t.Logf("%s: %d transactions", name, k)
		return k
	}
	if k := same("latest", nil, nil); k != n {
		t.Errorf("latest restore holds %d transactions, want %d", k, n)
	}
	requireSameDB(t, live, litestreamRestore(t, srv, path))

	var before, after uint64
	for _, o := range l0 {
		if o.MaxTXID < second/2 && before == 0 && o.MaxTXID > 5 {
			before = o.MaxTXID
		}
		if o.MinTXID > second && after == 0 && o.MaxTXID > second+3 {
			after = o.MaxTXID
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("no level-0 file before (%d) or after (%d) the snapshot at TXID %d", before, after, second)
	}
	// The human views of the replica (shown with -v).
	for _, args := range [][]string{{"ls", replica}, {"ls", url}, {"restore", "--dry-run", "--txid", strconv.FormatUint(after, 10), url}} {
		out, err := walfsStdout(t, env, args...)
		if err != nil || !strings.Contains(out, "app.db") {
			t.Fatalf("walfs %v: %v\n%s", args, err, out)
		}
		t.Logf("walfs %s:\n%s", strings.Join(args[:len(args)-1], " "), out)
	}

	for _, txid := range []uint64{before, second, after} {
		same(fmt.Sprintf("TXID %d", txid), []string{"--txid", strconv.FormatUint(txid, 10)}, []string{"-txid", fmt.Sprintf("%016x", txid)})
	}

	ts := time.Unix(0, int64(mid*1e9)).UTC().Format(time.RFC3339Nano)
	k := same("timestamp "+ts, []string{"--timestamp", ts}, []string{"-timestamp", ts})
	if k == 0 || k >= n {
		t.Errorf("restore at %s holds %d of %d transactions, want some in the middle", ts, k, n)
	}
}
