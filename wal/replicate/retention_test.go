package replicate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
)

func TestRetentionPlan(t *testing.T) {
	h := time.Hour
	for _, tc := range []struct {
		name   string
		files  []s3backend.FileInfo // any level, snapshots included
		now    time.Duration
		window time.Duration
		want   []string // deleted
	}{
		{
			name:   "no snapshot older than the cutoff: keep everything",
			files:  []s3backend.FileInfo{fi(9, 1, 10, 30*h), fi(0, 11, 11, 31*h)},
			now:    40 * h,
			window: 24 * h,
		},
		{
			name: "files covered by the base snapshot and older snapshots go",
			files: []s3backend.FileInfo{
				fi(9, 1, 10, 0), fi(9, 1, 20, 10*h),
				fi(0, 11, 15, 5*h), fi(0, 16, 20, 9*h), fi(0, 21, 25, 30*h),
			},
			now: 36 * h, window: 24 * h,
			want: []string{"L0:11-15", "L0:16-20", "L9:1-10"},
		},
		{
			name: "level 0 compacted into level 1 goes once older than the cutoff",
			files: []s3backend.FileInfo{
				fi(9, 1, 10, 0),
				fi(0, 11, 11, 1*h), fi(0, 12, 12, 2*h), fi(0, 13, 13, 3*h), fi(0, 14, 14, 4*h),
				fi(1, 11, 12, 2*h), fi(1, 13, 14, 4*h),
				fi(0, 15, 15, 30*h),
			},
			now: 30 * h, window: 24 * h,
			want: []string{"L0:11-11", "L0:12-12", "L0:13-13", "L0:14-14"},
		},
		{
			name: "old files that lead to the first point inside the window stay",
			files: []s3backend.FileInfo{
				fi(9, 1, 10, 0),
				fi(0, 11, 11, 1*h), fi(0, 12, 12, 2*h), fi(0, 13, 13, 3*h), fi(0, 14, 14, 13*h),
				fi(1, 11, 14, 13*h),
			},
			now: 26 * h, window: 24 * h, // cutoff 2h: 13 and 14 are inside, 13 needs 11 and 12
		},
		{
			name: "idle for long: the newest snapshot and the fewest files to the latest TXID stay",
			files: []s3backend.FileInfo{
				fi(9, 1, 10, 0),
				fi(0, 11, 12, 1*h), fi(0, 13, 14, 2*h), fi(1, 11, 14, 2*h),
			},
			now: 100 * h, window: 24 * h,
			want: []string{"L0:11-12", "L0:13-14"},
		},
		{
			name: "the base snapshot stays however old; older ones go",
			files: []s3backend.FileInfo{
				fi(9, 1, 5, 0), fi(9, 1, 10, 1*h), fi(9, 1, 20, 40*h),
				fi(0, 6, 10, 1*h), fi(0, 11, 20, 40*h), fi(0, 21, 22, 41*h),
			},
			now: 48 * h, window: 24 * h,
			want: []string{"L0:6-10", "L9:1-5"},
		},
		{
			name: "lineage break: a local snapshot after a TXID gap",
			files: []s3backend.FileInfo{
				fi(9, 1, 10, 0), fi(0, 11, 12, 1*h), fi(9, 1, 13, 2*h), fi(0, 14, 15, 30*h),
			},
			now: 30 * h, window: 24 * h,
			want: []string{"L0:11-12", "L9:1-10"},
		},
		{
			name: "unknown commit times are kept",
			files: []s3backend.FileInfo{
				fi(9, 1, 10, 0), fi(9, 1, 12, 1*h), {DB: "db", Level: 0, MinTXID: 11, MaxTXID: 12},
			},
			now: 48 * h, window: 24 * h,
			want: []string{"L9:1-10"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var level9, files []s3backend.FileInfo
			for _, f := range tc.files {
				if f.Level == s3backend.LevelSnapshot {
					level9 = append(level9, f)
				} else {
					files = append(files, f)
				}
			}
			del, err := retentionPlan(level9, files, t0.Add(tc.now), tc.window)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(del); !slices.Equal(got, tc.want) {
				t.Errorf("deleted %v, want %v", got, tc.want)
			}
		})
	}
}

// The check is the last line of defence: a plan that loses a point inside
// the window is refused.
func TestCheckRetentionRefuses(t *testing.T) {
	snaps := []s3backend.FileInfo{fi(9, 1, 10, 0)}
	files := []s3backend.FileInfo{fi(0, 11, 11, 1*time.Hour), fi(0, 12, 12, 30*time.Hour), fi(1, 11, 12, 30*time.Hour)}
	kept := []s3backend.FileInfo{files[1], files[2]} // 11 was needed to land on 12 via level 0... but L1 covers 12
	if err := checkRetention(snaps, files, snaps, kept, 10, t0.Add(6*time.Hour)); err != nil {
		t.Fatalf("kept set restores 12 through level 1: %v", err)
	}
	kept = []s3backend.FileInfo{files[1]}
	err := checkRetention(snaps, files, snaps, kept, 10, t0.Add(6*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "TXID 12") {
		t.Fatalf("got %v, want a refusal naming TXID 12", err)
	}
}
