package restore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/memstore"
)

func TestMakePlan(t *testing.T) {
	m := newModel(512)
	m.txs(40)
	k := func(level int, minTXID, maxTXID uint64) string { return key("app.db", level, minTXID, maxTXID) }
	tests := []struct {
		name   string
		setup  func(st s3backend.Store)
		target Target
		want   []string
		txid   uint64
	}{
		{
			name:  "snapshot then level 0",
			setup: func(st s3backend.Store) { m.putSnapshot(t, st, "app.db", 1); m.putL0(t, st, "app.db", 2, 4) },
			want:  []string{k(9, 1, 1), k(0, 2, 2), k(0, 3, 3), k(0, 4, 4)},
			txid:  4,
		},
		{
			name: "L1 covering 2-10 preferred over L0 singles",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putL0(t, st, "app.db", 2, 12)
				m.put(t, st, "app.db", 1, 2, 10)
			},
			want: []string{k(9, 1, 1), k(1, 2, 10), k(0, 11, 11), k(0, 12, 12)},
			txid: 12,
		},
		{
			name: "fewest files across levels 3,2,1,0",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putL0(t, st, "app.db", 2, 30)
				m.put(t, st, "app.db", 1, 2, 5)
				m.put(t, st, "app.db", 1, 6, 10)
				m.put(t, st, "app.db", 1, 21, 25)
				m.put(t, st, "app.db", 2, 2, 20)
				m.put(t, st, "app.db", 3, 2, 15) // overlapped by a longer L2: not chosen
			},
			want: []string{k(9, 1, 1), k(2, 2, 20), k(1, 21, 25), k(0, 26, 26), k(0, 27, 27), k(0, 28, 28), k(0, 29, 29), k(0, 30, 30)},
			txid: 30,
		},
		{
			name: "overlapping compaction continues the chain",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 8)
				m.put(t, st, "app.db", 1, 2, 12)
			},
			want: []string{k(9, 1, 8), k(1, 2, 12)},
			txid: 12,
		},
		{
			name: "newer snapshot preferred",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putSnapshot(t, st, "app.db", 6)
				m.putL0(t, st, "app.db", 2, 8)
			},
			want: []string{k(9, 1, 6), k(0, 7, 7), k(0, 8, 8)},
			txid: 8,
		},
		{
			name: "TXID target lands exactly, below an L1 that spans it",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putSnapshot(t, st, "app.db", 20)
				m.putL0(t, st, "app.db", 2, 10)
				m.put(t, st, "app.db", 1, 2, 10)
			},
			target: Target{TXID: 4},
			want:   []string{k(9, 1, 1), k(0, 2, 2), k(0, 3, 3), k(0, 4, 4)},
			txid:   4,
		},
		{
			name: "TXID target on a snapshot",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 5)
				m.putL0(t, st, "app.db", 6, 8)
			},
			target: Target{TXID: 5},
			want:   []string{k(9, 1, 5)},
			txid:   5,
		},
		{
			name: "timestamp target",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putL0(t, st, "app.db", 2, 10)
				m.put(t, st, "app.db", 1, 2, 10)
			},
			target: Target{Timestamp: m.times[6].Add(30 * time.Second)},
			want:   []string{k(9, 1, 1), k(0, 2, 2), k(0, 3, 3), k(0, 4, 4), k(0, 5, 5), k(0, 6, 6)},
			txid:   6,
		},
		{
			name: "no snapshot, level files from TXID 1",
			setup: func(st s3backend.Store) {
				m.putL0(t, st, "app.db", 1, 3)
				m.put(t, st, "app.db", 1, 1, 2)
			},
			want: []string{k(1, 1, 2), k(0, 3, 3)},
			txid: 3,
		},
	}
	// Timestamp targets read exact commit times with Stat where the store
	// has it and use the listed times where it has not: both must agree.
	views := []struct {
		name string
		view func(*memstore.Store) s3backend.Store
	}{
		{"stat", func(s *memstore.Store) s3backend.Store { return s }},
		{"list only", func(s *memstore.Store) s3backend.Store { return memstore.ListOnly(s) }},
	}
	for _, tt := range tests {
		for _, v := range views {
			t.Run(tt.name+"/"+v.name, func(t *testing.T) {
				st := memstore.New()
				tt.setup(st)
				p, err := MakePlan(context.Background(), v.view(st), "app.db", tt.target)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := planKeys(p), strings.Join(tt.want, " "); got != want {
					t.Errorf("plan\n got  %s\n want %s", got, want)
				}
				if p.TXID != tt.txid {
					t.Errorf("TXID = %d, want %d", p.TXID, tt.txid)
				}
				if got, want := p.Timestamp, m.times[tt.txid]; !got.Equal(want) {
					t.Errorf("Timestamp = %v, want %v", got, want)
				}
				var bytes int64
				for _, f := range p.Files {
					bytes += f.Size
				}
				if p.Bytes != bytes || p.PageSize != 512 || p.DBSize != int64(m.states[tt.txid].commit)*512 {
					t.Errorf("Bytes, PageSize, DBSize = %d, %d, %d; want %d, 512, %d", p.Bytes, p.PageSize, p.DBSize, bytes, int64(m.states[tt.txid].commit)*512)
				}
			})
		}
	}
}

func TestMakePlanErrors(t *testing.T) {
	m := newModel(512)
	m.txs(20)
	tests := []struct {
		name     string
		setup    func(st s3backend.Store)
		target   Target
		is       error
		contains []string
	}{
		{
			name:     "no backups",
			setup:    func(st s3backend.Store) { m.putSnapshot(t, st, "other.db", 1) },
			is:       ErrNoBackups,
			contains: []string{"check the replica URL"},
		},
		{
			name: "gap names the missing range and the keys around it",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putL0(t, st, "app.db", 2, 4)
				m.putL0(t, st, "app.db", 7, 9)
			},
			is:       ErrGap,
			contains: []string{"5..6", key("app.db", 0, 4, 4), key("app.db", 0, 7, 7), "hint:"},
		},
		{
			name: "TXID target inside a gap",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.putL0(t, st, "app.db", 2, 4)
				m.putL0(t, st, "app.db", 9, 9)
			},
			target:   Target{TXID: 6},
			is:       ErrGap,
			contains: []string{"5..8"},
		},
		{
			name: "TXID target inside a compacted file",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 1)
				m.put(t, st, "app.db", 1, 2, 10)
			},
			target:   Target{TXID: 7},
			is:       ErrTargetUnreachable,
			contains: []string{key("app.db", 1, 2, 10), "TXID 1 or 10"},
		},
		{
			name:     "TXID target past the latest",
			setup:    func(st s3backend.Store) { m.putSnapshot(t, st, "app.db", 3) },
			target:   Target{TXID: 9},
			is:       ErrTargetUnreachable,
			contains: []string{"latest TXID in the replica is 3"},
		},
		{
			name: "timestamp before the oldest snapshot",
			setup: func(st s3backend.Store) {
				m.putSnapshot(t, st, "app.db", 5)
				m.putL0(t, st, "app.db", 6, 7)
			},
			target:   Target{Timestamp: m.times[2]},
			is:       ErrNoSnapshot,
			contains: []string{key("app.db", 9, 1, 5)},
		},
		{
			name:     "no snapshot and no file from TXID 1",
			setup:    func(st s3backend.Store) { m.putL0(t, st, "app.db", 3, 5) },
			is:       ErrNoSnapshot,
			contains: []string{key("app.db", 0, 3, 3)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := memstore.New()
			tt.setup(st)
			_, err := MakePlan(context.Background(), st, "app.db", tt.target)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestMakePlanGapError(t *testing.T) {
	m := newModel(512)
	m.txs(10)
	st := memstore.New()
	m.putSnapshot(t, st, "", 2)
	m.putL0(t, st, "", 3, 3)
	m.putL0(t, st, "", 6, 6)
	_, err := MakePlan(context.Background(), st, "", Target{})
	var gap *GapError
	if !errors.As(err, &gap) {
		t.Fatalf("err = %v, want a *GapError", err)
	}
	want := GapError{From: 4, To: 5, Before: "0000/0000000000000003-0000000000000003.ltx", After: "0000/0000000000000006-0000000000000006.ltx"}
	if *gap != want {
		t.Errorf("gap = %+v, want %+v", *gap, want)
	}
}

// On S3, List reports upload times, which trail commit times (or lead them,
// when the server's clock is behind); a timestamp target must land on the
// exact commit times, reading only the few objects around the target.
func TestMakePlanTimestampUsesExactTimes(t *testing.T) {
	const n = 200
	m := newModel(512)
	m.txs(n)
	tests := []struct {
		name     string
		listed   func(commit time.Time) time.Time
		txid     uint64 // target: 10 s after this TXID's commit
		maxStats int
	}{
		// Uploaded 1.5 min after commit (TXIDs are 1 min apart): the
		// boundary is one object off the listed guess.
		{"upload lag", func(c time.Time) time.Time { return c.Add(90 * time.Second) }, 150, 2 + 4},
		// Server clock 2.5 min behind: objects listed before the target
		// were committed after it.
		{"server clock behind", func(c time.Time) time.Time { return c.Add(-150 * time.Second) }, 150, 2 + 6},
		// A copied bucket: every object listed at the copy time.
		{"copied bucket", func(time.Time) time.Time { return m.times[n].Add(time.Hour) }, 150, 2 + 2*8},
		{"copied bucket, early target", func(time.Time) time.Time { return m.times[n].Add(time.Hour) }, 3, 2 + 2*3},
		{"copied bucket, latest", func(time.Time) time.Time { return m.times[n].Add(time.Hour) }, n, 2 + 2*8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := memstore.New()
			m.putSnapshot(t, inner, "app.db", 1)
			m.putL0(t, inner, "app.db", 2, n)
			inner.SetListTime(func(fi s3backend.FileInfo) time.Time { return tt.listed(fi.CreatedAt) })
			st := memstore.Wrap(inner)
			p, err := MakePlan(context.Background(), st, "app.db", Target{Timestamp: m.times[tt.txid].Add(10 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if p.TXID != tt.txid {
				t.Errorf("TXID = %d, want %d", p.TXID, tt.txid)
			}
			if !p.Timestamp.Equal(m.times[tt.txid]) {
				t.Errorf("Timestamp = %v, want %v", p.Timestamp, m.times[tt.txid])
			}
			stats := len(st.Calls(memstore.OpStat))
			if stats > tt.maxStats {
				t.Errorf("%d Stat calls for %d objects, want at most %d", stats, n, tt.maxStats)
			}
			t.Logf("%d Stat calls for %d objects", stats, n)
		})
	}
}

func TestBoundary(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for b := 0; b <= n; b++ {
			for guess := 0; guess <= n; guess++ {
				probes := 0
				got, err := boundary(n, guess, func(i int) (bool, error) {
					if i < 0 || i >= n {
						t.Fatalf("n=%d: probe %d out of range", n, i)
					}
					probes++
					return i >= b, nil
				})
				if err != nil || got != b {
					t.Fatalf("boundary(n=%d, guess=%d) with b=%d = %d, %v", n, guess, b, got, err)
				}
				if guess == b && probes > 2 {
					t.Errorf("n=%d b=%d: a right guess cost %d probes", n, b, probes)
				}
			}
		}
	}
}
