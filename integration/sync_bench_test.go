package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/walfs/walfs/integration/testserver"
)

// syncThroughputScript commits 1-row transactions from n threads, each on its
// own connection, for secs seconds and prints commits per second.
const syncThroughputScript = `
import sqlite3, sys, threading, time
path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = sqlite3.connect(path, isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table if not exists t(id integer primary key, v blob)")
c.close()
count = [0] * n
stop = time.time() + secs
def run(i):
    c = sqlite3.connect(path, isolation_level=None, timeout=60)
    while time.time() < stop:
        c.execute("insert into t(v) values (randomblob(100))")
        count[i] += 1
start = time.time()
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]
print("%.0f" % (sum(count) / (time.time() - start)))
`

// BenchmarkSyncDurabilityThroughput reports commits/s in sync and async mode
// against a local MinIO with 1 and 8 writer connections (a measurement, not
// an assertion): go test -run '^$' -bench SyncDurability -benchtime 1x ./integration/
func BenchmarkSyncDurabilityThroughput(t *testing.B) {
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	for _, mode := range []string{"sync", "async"} {
		m := startMountEnv(t, env, filepath.Join(t.TempDir(), "data"), s3URL(srv, "tp-"+mode), "--durability", mode)
		for _, n := range []string{"1", "8"} {
			out := py(t, syncThroughputScript, filepath.Join(m.Mnt, "tp"+n+".db"), n, "5")
			t.Logf("durability %s, %s writer(s): %s commits/s", mode, n, strings.TrimSpace(out))
		}
		m.Unmount()
	}
}
