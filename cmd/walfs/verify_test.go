package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/wal/replicate"
)

func sampleComparisons() []replicate.Comparison {
	sum := ltx.Checksum(ltx.ChecksumFlag | 0x1234)
	return []replicate.Comparison{
		{DB: "a.db", TXID: 7, Live: sum, Captured: sum, Replica: sum, Files: 3},
		{DB: "sub/b.db", TXID: 9, Live: sum, Captured: sum, Replica: sum ^ 1, Files: 2,
			Difference: "the live database has checksum x, the replica y", RepairTXID: 10},
		{DB: "c.db", TXID: 4, Err: "upload TXID 4 of c.db before comparing: store unreachable"},
		{DB: "d.db", Skipped: "empty database; nothing replicated yet"},
	}
}

func TestPrintVerify(t *testing.T) {
	rep := verifyReport{MountPoint: "/mnt", Databases: comparisonsJSON(sampleComparisons())}
	var b bytes.Buffer
	printVerify(&b, rep)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"/mnt/a.db: equal at TXID 7 (checksum 8000000000001234, 3 replica file(s))",
		"/mnt/sub/b.db: DIFFERENT at TXID 9: the live database has checksum x, the replica y; repaired: new snapshot at TXID 10",
		"/mnt/c.db: NOT VERIFIED: upload TXID 4 of c.db before comparing: store unreachable",
		"/mnt/d.db: skipped: empty database; nothing replicated yet",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want one per database:\n%s", len(lines), b.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want[i])
		}
	}
	for _, tc := range []struct {
		name string
		dbs  []replicate.Comparison
		want string // "" for success
	}{
		{"all equal or skipped", []replicate.Comparison{sampleComparisons()[0], sampleComparisons()[3]}, ""},
		{"one differs", sampleComparisons()[:2], "1 of 2 databases differ from their replica"},
		{"one unverified", []replicate.Comparison{sampleComparisons()[2]}, "1 of 1 databases could not be verified"},
		{"both", sampleComparisons(), "1 of 4 databases differ from their replica and 1 could not be verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyFailures([]verifyReport{{MountPoint: "/mnt", Databases: comparisonsJSON(tc.dbs)}})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("verifyFailures: %q, want %q", got, tc.want)
			}
		})
	}
}

// POST /verify on the control socket, as `walfs verify` and `walfs sync
// --verify` send it.
func TestVerifyOverControlSocket(t *testing.T) {
	stateDir := t.TempDir()
	var got verifyRequest
	ctl, err := startControl(stateDir, slog.New(slog.DiscardHandler), nil, nil, verifyRoute(func(_ context.Context, req verifyRequest) verifyReport {
		got = req
		return verifyReport{DataDir: "/data", Replica: "file:///replica", Databases: comparisonsJSON(sampleComparisons())}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	rep, err := askControl[verifyReport](t.Context(), stateDir, "verify", verifyRequest{Timeout: 5 * time.Second, NoRepair: true}, "verify")
	if err != nil {
		t.Fatal(err)
	}
	if got.Timeout != 5*time.Second || !got.NoRepair {
		t.Errorf("mount got %+v", got)
	}
	if len(rep.Databases) != 4 || rep.Databases[1].Status != verifyDifferent || rep.Databases[1].RepairTXID != 10 ||
		rep.Databases[0].Live != "8000000000001234" || rep.Databases[3].Status != verifySkipped {
		t.Errorf("report over the socket: %+v", rep.Databases)
	}
}
