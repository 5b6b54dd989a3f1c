package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/wal/replicate"
)

func sampleStatus() []replicate.DBStatus {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return []replicate.DBStatus{{
		DB: `odd "name".db`, LocalTXID: 120, ReplicatedTXID: 100, Lag: 1500 * time.Millisecond, SpoolBytes: 4096,
		LastUpload: at, LastError: "upload app.db/0000/…: store unreachable", LastErrorAt: at.Add(-time.Minute),
		Captured: 20, Uploads: 7, UploadedBytes: 9000, Compactions: [4]uint64{0, 3, 1, 0}, Snapshots: 1, Deleted: 5,
		Errors:  map[string]uint64{"upload": 2},
		Levels:  []replicate.LevelStatus{{Level: 9, Files: 1, Bytes: 500, MinTXID: 1, MaxTXID: 50}, {Level: 0, Files: 7, Bytes: 900, MinTXID: 51, MaxTXID: 100}},
		Repairs: 2, LastRepair: &replicate.Repair{At: at.Add(-10 * time.Second), TXID: 101, Why: "the replica's latest point is TXID 99"},
		Stuck: []string{"retention failed 6 times in a row; it tries again after the next upload: store unreachable"},
	}}
}

func TestWriteMetrics(t *testing.T) {
	requests := map[string]instrument.OpCount{
		instrument.OpPut:  {Calls: 9, Errors: map[string]uint64{instrument.KindUnreachable: 2}},
		instrument.OpList: {Calls: 5, Errors: map[string]uint64{}},
	}
	var b bytes.Buffer
	writeMetrics(&b, sampleStatus(), requests)
	out := b.String()
	for _, want := range []string{
		"# TYPE walfs_replication_lag_seconds gauge\n",
		`walfs_replication_lag_seconds{db="odd \"name\".db"} 1.5` + "\n",
		`walfs_spool_bytes{db="odd \"name\".db"} 4096` + "\n",
		`walfs_transactions_captured_total{db="odd \"name\".db"} 20` + "\n",
		`walfs_uploads_total{db="odd \"name\".db"} 7` + "\n",
		`walfs_compactions_total{db="odd \"name\".db",level="2"} 1` + "\n",
		`walfs_errors_total{db="odd \"name\".db",kind="upload"} 2` + "\n",
		`walfs_replica_files{db="odd \"name\".db",level="9"} 1` + "\n",
		`walfs_store_requests_total{op="list"} 5` + "\n",
		`walfs_store_requests_total{op="put"} 9` + "\n",
		`walfs_store_errors_total{op="put",kind="unreachable"} 2` + "\n",
		`walfs_last_upload_timestamp_seconds{db="odd \"name\".db"} 1772366400` + "\n",
		`walfs_repairs_total{db="odd \"name\".db"} 2` + "\n",
		`walfs_maintenance_stuck{db="odd \"name\".db"} 1` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every family is declared once, before its samples.
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name = strings.Fields(name)[0]
			if seen[name] {
				t.Errorf("family %s declared twice", name)
			}
			seen[name] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		if !seen[name] {
			t.Errorf("sample before its family: %s", line)
		}
	}
}

func TestPrintStatus(t *testing.T) {
	c := instrument.NewCounter()
	rep := buildStatus(sampleStatus(), c, "/data", "file:///replica")
	rep.MountPoint = "/mnt"
	var b bytes.Buffer
	printStatus(&b, rep, time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC))
	out := b.String()
	for _, want := range []string{"/mnt  (data /data, replica file:///replica", "REQUESTS/1H", `odd "name".db`, "120", "100", "1.5s", "4.0 KiB", "30s ago", "1m30s ago: upload",
		"REPAIRS", `odd "name".db: repaired 2 time(s); last 40s ago: new snapshot at TXID 101 because the replica's latest point is TXID 99`,
		`odd "name".db: STUCK: retention failed 6 times`} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}

// GET /status on the control socket, as `walfs status` asks it.
func TestStatusOverControlSocket(t *testing.T) {
	stateDir := t.TempDir()
	c := instrument.NewCounter()
	st := instrument.Wrap(s3backend.NewFileStore(t.TempDir()), c)
	if _, err := st.List(t.Context(), `odd "name".db`, 0); err != nil {
		t.Fatal(err)
	}
	ctl, err := startControl(stateDir, slog.New(slog.DiscardHandler), nil, nil, statusRoute(func() statusReport {
		return buildStatus(sampleStatus(), c, "/data", st.String())
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(stateDir, controlSocketName))
	}}}
	resp, err := client.Get("http://walfs/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep statusReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Databases) != 1 {
		t.Fatalf("databases: %+v", rep.Databases)
	}
	d := rep.Databases[0]
	if d.LocalTXID != 120 || d.ReplicatedTXID != 100 || d.LagSeconds != 1.5 || d.SpoolBytes != 4096 || d.StoreRequestsLastHour != 1 ||
		d.LastUpload == nil || d.LastError == "" || d.Compactions["1"] != 3 || len(d.Levels) != 2 {
		t.Errorf("status over the socket: %+v", d)
	}
	if d.Repairs != 2 || d.LastRepair == nil || d.LastRepair.TXID != 101 || len(d.Stuck) != 1 {
		t.Errorf("repairs over the socket: %d, last %+v, stuck %v", d.Repairs, d.LastRepair, d.Stuck)
	}
	if rep.StoreRequests[instrument.OpList] != 1 {
		t.Errorf("store requests: %v", rep.StoreRequests)
	}
}

// A queue that cannot drain says why, and since when, first.
func TestPrintStatusUploadsFailing(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	dbs := sampleStatus()
	dbs[0].UploadError = "upload app.db/0000/…: store unreachable"
	dbs[0].UploadFailingSince, dbs[0].UploadFailures = now.Add(-3*time.Minute), 7
	rep := buildStatus(dbs, instrument.NewCounter(), "/data", "file:///replica")
	if d := rep.Databases[0]; d.UploadFailingSince == nil || !d.UploadFailingSince.Equal(now.Add(-3*time.Minute)) || d.UploadFailures != 7 {
		t.Errorf("json: failing since %v, %d failures", d.UploadFailingSince, d.UploadFailures)
	}
	var b bytes.Buffer
	printStatus(&b, rep, now)
	if want := "uploads failing since 3m0s ago (7 attempts): upload app.db/0000/…: store unreachable"; !strings.Contains(b.String(), want) {
		t.Errorf("status table lacks %q:\n%s", want, b.String())
	}
	var m bytes.Buffer
	writeMetrics(&m, dbs, nil)
	if want := `walfs_upload_failing_since_timestamp_seconds{db="odd \"name\".db"} 1772366250`; !strings.Contains(m.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}
