package s3backend

import (
	"cmp"
	"slices"
)

// SortFileInfos sorts infos by MinTXID, then MaxTXID: the order List returns.
func SortFileInfos(infos []FileInfo) {
	slices.SortFunc(infos, func(a, b FileInfo) int {
		if c := cmp.Compare(a.MinTXID, b.MinTXID); c != 0 {
			return c
		}
		return cmp.Compare(a.MaxTXID, b.MaxTXID)
	})
}
