package replicate

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// fi describes a file of database "db" committed at t0+at.
func fi(level int, minTXID, maxTXID uint64, at time.Duration) s3backend.FileInfo {
	return s3backend.FileInfo{DB: "db", Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: 100, CreatedAt: t0.Add(at)}
}

func keys(infos []s3backend.FileInfo) []string {
	out := make([]string, len(infos))
	for i, f := range infos {
		out[i] = fmt.Sprintf("L%d:%d-%d", f.Level, f.MinTXID, f.MaxTXID)
	}
	slices.Sort(out)
	return out
}

func TestChainTo(t *testing.T) {
	files := []s3backend.FileInfo{
		fi(0, 11, 11, 0), fi(0, 12, 12, 0), fi(0, 13, 14, 0), fi(0, 15, 15, 0),
		fi(1, 11, 14, 0), fi(2, 11, 15, 0),
	}
	for _, tc := range []struct {
		from, to uint64
		want     []string
		ok       bool
	}{
		{10, 15, []string{"L2:11-15"}, true},
		{10, 14, []string{"L1:11-14"}, true},
		{10, 12, []string{"L0:11-11", "L0:12-12"}, true},
		{12, 15, []string{"L2:11-15"}, true}, // overlapping what is applied is fine
		{14, 15, []string{"L2:11-15"}, true}, // same reach, same size: the higher level wins
		{10, 13, []string{"L0:11-11", "L0:12-12"}, false},
		{15, 15, nil, true},
		{9, 15, nil, false}, // nothing starts at 10
	} {
		chain, ok := chainTo(files, tc.from, tc.to)
		if got := keys(chain); ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("chainTo(%d, %d): got %v %v, want %v %v", tc.from, tc.to, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRestorable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		snaps []s3backend.FileInfo
		files []s3backend.FileInfo
		want  []uint64
	}{
		{
			name:  "snapshot and level 0",
			snaps: []s3backend.FileInfo{fi(9, 1, 10, 0)},
			files: []s3backend.FileInfo{fi(0, 11, 11, 0), fi(0, 12, 13, 0), fi(0, 14, 14, 0)},
			want:  []uint64{10, 11, 13, 14},
		},
		{
			name:  "compaction alone lands on its end only",
			snaps: []s3backend.FileInfo{fi(9, 1, 10, 0)},
			files: []s3backend.FileInfo{fi(1, 11, 14, 0), fi(0, 13, 13, 0), fi(0, 14, 14, 0)},
			want:  []uint64{10, 14},
		},
		{
			name:  "gap stops the chain",
			snaps: []s3backend.FileInfo{fi(9, 1, 10, 0)},
			files: []s3backend.FileInfo{fi(0, 11, 11, 0), fi(0, 13, 13, 0)},
			want:  []uint64{10, 11},
		},
		{
			name:  "a newer snapshot governs the points after it",
			snaps: []s3backend.FileInfo{fi(9, 1, 10, 0), fi(9, 1, 12, 0)},
			files: []s3backend.FileInfo{fi(0, 11, 11, 0), fi(1, 11, 13, 0), fi(0, 14, 14, 0)},
			want:  []uint64{10, 11, 12, 13, 14},
		},
		{
			name:  "files from TXID 1 without a snapshot",
			files: []s3backend.FileInfo{fi(0, 1, 2, 0), fi(0, 3, 3, 0)},
			want:  []uint64{2, 3},
		},
		{
			name:  "nothing before the first snapshot without files from 1",
			snaps: []s3backend.FileInfo{fi(9, 1, 10, 0)},
			files: []s3backend.FileInfo{fi(0, 5, 9, 0), fi(0, 11, 11, 0)},
			want:  []uint64{10, 11},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Sorted(maps.Keys(restorable(snapshotsOf(tc.snaps), tc.files)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
