package replicate

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/s3backend/memstore"
	"github.com/walfs/walfs/wal/restore"
)

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func diff(after, before map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// An idle database costs nothing: once what was written has been compacted,
// the loop (the real one, on a fake clock) sends no request for a minute,
// an hour, or the days after retention and the daily snapshot have run once.
func TestIdleDatabaseSendsNoRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, memstore.New(), MaintenanceOptions{})
		m := newModel(t, "app.db", 20, 5)
		m.snapshot(g.store(), g.now())
		for range 30 {
			m.batch(g.store(), g.now(), 1)
			time.Sleep(time.Second) // no loop yet: the writes come first
		}
		g.start()

		// Settle: level 1 at 30s, level 2 at 5m, level 3 at 1h.
		g.advance(time.Hour)
		before := g.calls()
		if got := len(g.r.maint.store.files("app.db", 3)); got != 1 {
			t.Fatalf("level 3 after an hour: %d files, want 1", got)
		}

		g.advance(time.Minute)
		if d := diff(g.calls(), before); len(d) > 0 {
			t.Fatalf("idle minute: %v requests, want none", d)
		}
		g.advance(time.Hour)
		if d := diff(g.calls(), before); len(d) > 0 {
			t.Fatalf("idle hour: %v requests, want none", d)
		}

		// Across a day the snapshot (24h after the last one) and retention
		// (24h after the writes) each act once; after that, silence again.
		perHour := map[int]map[string]uint64{}
		for h := range 48 {
			b := g.calls()
			g.advance(time.Hour)
			if d := diff(g.calls(), b); len(d) > 0 {
				perHour[h] = d
			}
		}
		t.Logf("requests in the hours of two idle days that had any: %v", perHour)
		if len(perHour) > 2 {
			t.Errorf("requests in %d of 48 idle hours, want at most 2 (one snapshot, one retention pass)", len(perHour))
		}
		b := g.calls()
		g.advance(24 * time.Hour)
		if d := diff(g.calls(), b); len(d) > 0 {
			t.Errorf("third idle day: %v requests, want none", d)
		}
		g.requireNoErrors()
		got, _ := restoreAt(t, g.store(), restore.Target{})
		if !bytes.Equal(got, m.image()) {
			t.Fatal("restored latest differs from the model")
		}
	})
}

// Request counts under steady load: one level-0 upload per second for two
// simulated hours (one under the race detector). The figures the issue asks for are logged; the test holds
// them to what the schedule implies.
func TestRequestsUnderSteadyLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates two hours of uploads")
	}
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, memstore.New(), MaintenanceOptions{})
		g.start()
		m := newModel(t, "app.db", 50, 6).forgetImages()
		m.snapshot(g.store(), g.now())
		hours := 2
		if raceEnabled {
			hours = 1
		}
		var hour map[string]uint64
		for h := range hours {
			before := g.calls()
			for range 3600 {
				m.batch(g.store(), g.now(), 1)
				g.advance(time.Second)
			}
			hour = diff(g.calls(), before)
			t.Logf("hour %d: %d requests %v", h+1, sum(hour), hour)
		}
		g.requireNoErrors()
		// Per hour: 3600 level-0 PUTs by the uploader, 120 + 12 + 1 compaction
		// PUTs, and the size-triggered snapshots; compaction reads nothing back.
		maint := hour[instrument.OpPut] - 3600
		if maint < 133 || maint > 133+20 {
			t.Errorf("maintenance PUTs in an hour: got %d, want 133 plus a few snapshots", maint)
		}
		if got := hour[instrument.OpList]; got != 0 {
			t.Errorf("LISTs in an hour: got %d, want 0", got)
		}
		got, _ := restoreAt(t, g.store(), restore.Target{})
		if !bytes.Equal(got, m.image()) {
			t.Fatal("restored latest differs from the model")
		}
	})
}

func TestSnapshotTriggers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    MaintenanceOptions
		every   time.Duration // between uploads
		uploads int
		want    bool // a maintenance snapshot was written
	}{
		{"interval", MaintenanceOptions{SnapshotInterval: time.Hour, SnapshotFactor: -1}, time.Minute, 61, true},
		{"not yet", MaintenanceOptions{SnapshotInterval: time.Hour, SnapshotFactor: -1}, time.Minute, 50, false},
		{"size", MaintenanceOptions{SnapshotInterval: -1, SnapshotFactor: 1}, time.Second, 60, true},
		{"size not reached", MaintenanceOptions{SnapshotInterval: -1, SnapshotFactor: 1000}, time.Second, 60, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.opts.Retention = -1
				g := newRig(t, memstore.New(), tc.opts)
				g.start()
				m := newModel(t, "app.db", 40, 7)
				m.snapshot(g.store(), g.now())
				for range tc.uploads {
					g.advance(tc.every)
					m.batch(g.store(), g.now(), 2)
				}
				g.advance(30 * time.Second)
				g.requireNoErrors()
				snaps := g.r.maint.store.files("app.db", 9)
				if got := len(snaps) > 1; got != tc.want {
					t.Fatalf("snapshots %v: new one written %v, want %v", keys(snaps), got, tc.want)
				}
				if !tc.want {
					return
				}
				newest := snaps[len(snaps)-1]
				// Restore from the new snapshot alone: it must be the whole database at its TXID.
				got, plan := restoreAt(t, g.store(), restore.Target{TXID: newest.MaxTXID})
				if len(plan.Files) != 1 {
					t.Errorf("restore at the snapshot used %d files, want 1", len(plan.Files))
				}
				if !bytes.Equal(got, m.images[newest.MaxTXID]) {
					t.Error("snapshot content differs from the model")
				}
				if g.dm.snapshots == 0 {
					t.Error("snapshot not counted")
				}
			})
		})
	}
}

// The scenario of the issue: many batches over more than a day, with
// compaction, snapshots and retention on their default schedules. Afterwards
// the latest TXID and points throughout the retention window restore to
// exactly the model's pages, by TXID and by time.
func TestRestoreAfterCompactionAndRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, memstore.New(), MaintenanceOptions{})
		g.start()
		m := newModel(t, "app.db", 40, 8)
		m.snapshot(g.store(), g.now())
		rng := m.rng
		for range 1400 { // about 29 hours at one upload per 75s on average
			g.advance(time.Duration(1+rng.IntN(149)) * time.Second)
			m.batch(g.store(), g.now(), 1+rng.IntN(5))
		}
		g.advance(time.Hour)
		g.requireNoErrors()

		ev := g.r.maint.store.events("app.db")
		if ev.deleted == 0 {
			t.Fatal("retention deleted nothing in 30 hours")
		}
		if g.dm.snapshots == 0 {
			t.Fatal("no snapshot written in 30 hours")
		}
		cutoff := g.now().Add(-DefaultRetention)
		var inWindow []uint64
		for txid, at := range m.times {
			if at.After(cutoff) {
				inWindow = append(inWindow, txid)
			}
		}
		slices.Sort(inWindow)
		t.Logf("%d TXIDs, %d landing points inside the window, %d files deleted, %d snapshots written, store holds %v",
			m.txid, len(inWindow), ev.deleted, g.dm.snapshots, levelCounts(g))

		got, _ := restoreAt(t, g.store(), restore.Target{})
		if !bytes.Equal(got, m.image()) {
			t.Fatal("latest: restored pages differ from the model")
		}
		// Points inside the window are restorable (plans only): the first ones,
		// where retention cut, all of them, and every seventh of the rest ...
		for i, p := range inWindow {
			if i < 100 || i%7 == 0 || i == len(inWindow)-1 {
				if _, err := restore.MakePlan(t.Context(), g.store(), "app.db", restore.Target{TXID: p}); err != nil {
					t.Fatalf("TXID %d (inside the window) is not restorable: %v", p, err)
				}
			}
		}
		// ... and a sample restores to the model's exact pages, by TXID and by time.
		for i := 0; i < len(inWindow); i += len(inWindow)/12 + 1 {
			p := inWindow[i]
			got, _ := restoreAt(t, g.store(), restore.Target{TXID: p})
			if !bytes.Equal(got, m.images[p]) {
				t.Errorf("TXID %d: restored pages differ from the model", p)
			}
			got, plan := restoreAt(t, g.store(), restore.Target{Timestamp: m.times[p].Add(time.Millisecond)})
			if plan.TXID != p || !bytes.Equal(got, m.images[p]) {
				t.Errorf("time of TXID %d: restored TXID %d, pages equal %v", p, plan.TXID, bytes.Equal(got, m.images[p]))
			}
		}
		// Storage is bounded: nothing older than the base snapshot remains.
		if n := len(g.r.maint.store.files("app.db", 0)); n > len(inWindow)+50 {
			t.Errorf("level 0 holds %d files, the window only %d points", n, len(inWindow))
		}
	})
}

func levelCounts(g *rig) string {
	s := ""
	for _, level := range []int{9, 3, 2, 1, 0} {
		s += fmt.Sprintf("L%d=%d ", level, len(g.r.maint.store.files("app.db", level)))
	}
	return s
}
