package restore

import (
	"context"
	"errors"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// Point-in-time targets need each object's commit time. A store lists
// objects with a time of its own (S3: LastModified, the upload time, which
// trails the commit time by the upload lag, or by much more in a bucket that
// was copied); the exact commit time costs one request per object
// (s3backend.Stater: a HEAD for the timestamp metadata). Litestream issues
// that HEAD for every object. walfs needs it only for the objects around
// the target: within a level, commit times grow with TXID, so the objects
// committed at or before the target form a prefix of the level, and finding
// where that prefix ends is a search.
//
// timeLimits searches from the listed times' guess outwards (galloping,
// then bisecting), so it stays correct whatever the store's clock says and
// costs, per level, one or two requests when listed times are close to
// commit times, and O(log k) when k objects were uploaded late.

// errListingChanged means an object disappeared between List and Stat
// (retention or compaction ran); MakePlan lists again.
var errListingChanged = errors.New("replica changed while planning")

// timeLimits returns, for every level in levels, the MaxTXID of the last
// object committed at or before ts (0: none). levels holds each level's
// objects sorted by TXID. The objects it reads the exact time of get that
// time as CreatedAt.
func timeLimits(ctx context.Context, st s3backend.Store, levels [][]s3backend.FileInfo, ts time.Time) (map[int]uint64, error) {
	limits := map[int]uint64{}
	stater, _ := st.(s3backend.Stater)
	for _, infos := range levels {
		if len(infos) == 0 {
			continue
		}
		b, err := boundary(len(infos), firstListedAfter(infos, ts), func(i int) (bool, error) {
			if stater == nil {
				return infos[i].CreatedAt.After(ts), nil
			}
			fi, err := stater.Stat(ctx, infos[i])
			if errors.Is(err, s3backend.ErrNotFound) {
				return false, objectErr("stat", infos[i], errListingChanged)
			} else if err != nil {
				return false, objectErr("stat", infos[i], err)
			}
			infos[i].CreatedAt = fi.CreatedAt
			return fi.CreatedAt.After(ts), nil
		})
		if err != nil {
			return nil, err
		}
		if b > 0 {
			limits[infos[0].Level] = infos[b-1].MaxTXID
		}
	}
	return limits, nil
}

// firstListedAfter is the index of the first object whose listed time is
// after ts, len(infos) if none: the guess timeLimits starts from.
func firstListedAfter(infos []s3backend.FileInfo, ts time.Time) int {
	for i, f := range infos {
		if f.CreatedAt.After(ts) {
			return i
		}
	}
	return len(infos)
}

// boundary returns the smallest b in [0, n] such that after(i) is false for
// every i < b and true for i = b, assuming after is monotone (false, then
// true). It probes guess first, then gallops away from it with doubling
// steps until after changes, then bisects; so a guess that is right costs
// two probes and one k positions off about 2·log2(k).
func boundary(n, guess int, after func(int) (bool, error)) (int, error) {
	lo, hi := -1, n // after(lo) is false, after(hi) is true (both virtual at the ends)
	probe := func(i int) (bool, error) {
		a, err := after(i)
		if err == nil {
			if a {
				hi = i
			} else {
				lo = i
			}
		}
		return a, err
	}
	if guess < n {
		if _, err := probe(guess); err != nil {
			return 0, err
		}
	}
	if hi <= guess { // after(guess): gallop down
		for step := 1; hi-step > lo; step *= 2 {
			if a, err := probe(hi - step); err != nil {
				return 0, err
			} else if !a {
				break
			}
		}
	} else { // !after(guess): gallop up
		for step := 1; lo+step < hi; step *= 2 {
			if a, err := probe(lo + step); err != nil {
				return 0, err
			} else if a {
				break
			}
		}
	}
	for hi-lo > 1 {
		if _, err := probe(lo + (hi-lo)/2); err != nil {
			return 0, err
		}
	}
	return hi, nil
}
