package integration

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/integration/testserver"
)

// statusDB is the part of `walfs status --json` these tests read.
type statusDB struct {
	DB                    string  `json:"db"`
	LocalTXID             uint64  `json:"local_txid"`
	ReplicatedTXID        uint64  `json:"replicated_txid"`
	LagSeconds            float64 `json:"lag_seconds"`
	SpoolBytes            int64   `json:"spool_bytes"`
	LastError             string  `json:"last_error"`
	StoreRequestsLastHour uint64  `json:"store_requests_last_hour"`
	OutsideChecks         uint64  `json:"outside_checks"`
	OutsideSnapshots      uint64  `json:"outside_snapshots"`
	Levels                []struct {
		Level   int    `json:"level"`
		MaxTXID uint64 `json:"max_txid"`
	} `json:"levels"`
}

type statusMount struct {
	MountPoint    string            `json:"mount_point"`
	StoreRequests map[string]uint64 `json:"store_requests"`
	Databases     []statusDB        `json:"databases"`
}

// status runs `walfs status --json MNT` and returns the mount's report.
func status(t *testing.T, mnt string) statusMount {
	t.Helper()
	out, err := runWalfs(t, "status", "--json", mnt)
	if err != nil {
		t.Fatalf("walfs status: %v\n%s", err, out)
	}
	var reps []statusMount
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("walfs status --json: %v (%d reports)\n%s", err, len(reps), out)
	}
	return reps[0]
}

func (s statusMount) db(t *testing.T, name string) statusDB {
	t.Helper()
	for _, d := range s.Databases {
		if d.DB == name {
			return d
		}
	}
	t.Fatalf("status lists no %s: %+v", name, s)
	return statusDB{}
}

// ltxRequests sums the store calls on LTX objects (a replica lease, when
// there is one, is the mount's cost, not a database's).
func (s statusMount) ltxRequests() uint64 {
	var n uint64
	for op, c := range s.StoreRequests {
		if !strings.HasPrefix(op, "conditional_") {
			n += c
		}
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape metrics: %s\n%s", resp.Status, b)
	}
	return string(b)
}

const steadyWriterScript = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table if not exists t(id integer primary key, v text)")
end = time.time() + float(sys.argv[2])
i = 0
while time.time() < end:
    c.execute("insert into t(v) values (?)", ("row %d" % i,))
    i += 1
    time.sleep(0.1)
c.close()
print(i)
`

// Observability against MinIO, in real time: `walfs status` and the
// Prometheus metrics report a steady writer's database, and once the writer
// stops and compaction has caught up, the idle database costs no store
// request for a whole minute.
func TestStatusMetricsAndIdleMinuteMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs in real time for about two minutes")
	}
	requireEnv(t)
	srv := testserver.StartMinIO(t)
	env := s3Env(srv)
	addr := freeAddr(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	m := startMountEnv(t, env, dataDir, s3URL(srv, "observe"), "--metrics-addr", addr)
	db := filepath.Join(m.Mnt, "app.db")

	before := status(t, m.Mnt)
	py(t, steadyWriterScript, db, "30") // about 10 commits a second for 30 s
	m.Sync()
	load := status(t, m.Mnt)
	t.Logf("store calls while writing 30 s at ~10 tx/s: %d (%v before, %v after)", load.ltxRequests()-before.ltxRequests(), before.StoreRequests, load.StoreRequests)

	// Wait for level 1 to hold the last transaction (compaction every 30 s).
	deadline := time.Now().Add(90 * time.Second)
	for {
		s := status(t, m.Mnt).db(t, "app.db")
		var l1 uint64
		for _, l := range s.Levels {
			if l.Level == 1 {
				l1 = l.MaxTXID
			}
		}
		if l1 == s.LocalTXID && s.ReplicatedTXID == s.LocalTXID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("level 1 did not catch up within 90 s: %+v", s)
		}
		time.Sleep(time.Second)
	}
	idle := status(t, m.Mnt)
	time.Sleep(time.Minute)
	after := status(t, m.Mnt)
	if got := after.ltxRequests() - idle.ltxRequests(); got != 0 {
		t.Errorf("idle minute: %d store calls (%v before, %v after), want 0", got, idle.StoreRequests, after.StoreRequests)
	}
	a := after.db(t, "app.db")
	if d := a.StoreRequestsLastHour - idle.db(t, "app.db").StoreRequestsLastHour; d != 0 {
		t.Errorf("idle minute: %d calls for app.db, want 0", d)
	}
	if a.LocalTXID == 0 || a.ReplicatedTXID != a.LocalTXID || a.LagSeconds != 0 || a.SpoolBytes != 0 || a.LastError != "" {
		t.Errorf("status of an idle, replicated database: %+v", a)
	}

	metrics := scrape(t, addr)
	for _, want := range []string{
		`walfs_replication_lag_seconds{db="app.db"} 0`,
		`walfs_spool_bytes{db="app.db"} 0`,
		`# TYPE walfs_transactions_captured_total counter`,
		`walfs_uploads_total{db="app.db"}`,
		`walfs_compactions_total{db="app.db",level="1"}`,
		`walfs_store_requests_total{op="put"}`,
		`# TYPE walfs_errors_total counter`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	out, err := runWalfs(t, "status", m.Mnt)
	if err != nil || !strings.Contains(out, "app.db") || !strings.Contains(out, "REQUESTS/1H") {
		t.Errorf("walfs status: %v\n%s", err, out)
	}
	// Every mount on the machine: other tests' mounts may not answer (exit
	// 1, naming them), but this one must be listed.
	if out, err := runWalfs(t, "status", "--json"); !strings.Contains(out, `"mount_point": "`+m.Mnt+`"`) {
		t.Errorf("walfs status --json (every mount) does not list %s: %v\n%s", m.Mnt, err, out)
	}
	m.Unmount()
	requireSameDB(t, filepath.Join(dataDir, "app.db"), restoreToEnv(t, env, s3URL(srv, "observe/app.db")))
}
