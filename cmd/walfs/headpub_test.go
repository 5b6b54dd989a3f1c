package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/lease"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/head"
	"github.com/walfs/walfs/wal/replicate"
)

// The mount publishes a head record where the store does conditional
// writes and the lease mode lets it: under a lease, or with the lease off.
func TestStartHeadPublisher(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if p := startHeadPublisher(t.Context(), memstore.ListOnly(memstore.New()), nil, lease.ModeOff, 0, log); p != nil {
		t.Error("a publisher on a store without conditional writes")
	}
	if p := startHeadPublisher(t.Context(), memstore.New(), nil, lease.ModeAuto, 0, log); p != nil {
		t.Error("a publisher where lease auto found no conditional writes")
	}
	st := memstore.New()
	p := startHeadPublisher(t.Context(), st, nil, lease.ModeOff, 0, log)
	if p == nil {
		t.Fatal("no publisher with the lease off on a store with conditional writes")
	}
	var o replicate.Options
	headHooks(p, &o)
	info := s3backend.FileInfo{DB: "app.db", Level: 0, MinTXID: 1, MaxTXID: 2, Size: 10, CreatedAt: time.Unix(100, 0)}
	o.Uploaded("app.db", info, replicate.Pos{TXID: 2, Checksum: 5})
	closeHeadPublisher(p, 10*time.Second, log)
	body, _, err := st.Get(t.Context(), head.Key)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := head.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if e := rec.DBs["app.db"]; e.TXID != 2 || e.Checksum != 5 || !e.Commit.Equal(info.CreatedAt) || len(e.Files) != 1 {
		t.Fatalf("entry %+v", e)
	}
	var out bytes.Buffer
	printHeadStatus(&out, headStatusOf(p), time.Now())
	if !strings.Contains(out.String(), "seq 1, 1 publishes") {
		t.Fatalf("status line %q", out.String())
	}
	out.Reset()
	printHeadStatus(&out, &headStatusJSON{Seq: 7, Overflow: true}, time.Now())
	if !strings.Contains(out.String(), "followers list the replica") {
		t.Fatalf("status line of an overflowed record %q", out.String())
	}
}
