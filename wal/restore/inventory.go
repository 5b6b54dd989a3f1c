package restore

import (
	"context"
	"fmt"
	"time"

	"github.com/superfly/ltx"
	"github.com/walfs/walfs/s3backend"
)

// ReadHeader reads and validates the 100-byte LTX header of one object and
// checks that it matches the object's key.
func ReadHeader(ctx context.Context, st s3backend.Store, info s3backend.FileInfo) (ltx.Header, error) {
	rc, err := st.Open(ctx, info, 0)
	if err != nil {
		return ltx.Header{}, objectErr("read header of", info, err)
	}
	defer rc.Close()
	hdr, _, err := ltx.DecodeHeader(rc)
	if err == nil {
		err = checkHeader(hdr, info)
	}
	if err != nil {
		return ltx.Header{}, withHint(objectErr("read header of", info, fmt.Errorf("%w: %w", ErrCorrupt, err)), hintCorrupt)
	}
	return hdr, nil
}

// checkHeader validates hdr and checks it describes the object named by info.
func checkHeader(hdr ltx.Header, info s3backend.FileInfo) error {
	if err := hdr.Validate(); err != nil {
		return fmt.Errorf("invalid header: %w", err)
	}
	if uint64(hdr.MinTXID) != info.MinTXID || uint64(hdr.MaxTXID) != info.MaxTXID {
		return fmt.Errorf("header TXID range %d..%d does not match the key", hdr.MinTXID, hdr.MaxTXID)
	}
	return nil
}

// LevelSummary describes the objects of one level of a database's replica.
type LevelSummary struct {
	Level   int
	Files   []s3backend.FileInfo // sorted by MinTXID
	MinTXID uint64               // lowest MinTXID
	MaxTXID uint64               // highest MaxTXID
	Bytes   int64
	Oldest  time.Time // earliest CreatedAt
	Newest  time.Time // latest CreatedAt
}

// ListLevels lists the levels a restore reads (snapshots first, then 3..0),
// leaving out empty ones. It returns ErrNoBackups when all are empty.
func ListLevels(ctx context.Context, st s3backend.Store, db string) ([]LevelSummary, error) {
	var out []LevelSummary
	for _, level := range append([]int{s3backend.LevelSnapshot}, compactionLevels...) {
		files, err := st.List(ctx, db, level)
		if err != nil {
			return nil, fmt.Errorf("list level %d of %s in %s: %w", level, dbName(db), st, err)
		}
		if len(files) == 0 {
			continue
		}
		ls := LevelSummary{Level: level, Files: files, MinTXID: files[0].MinTXID}
		for _, f := range files {
			ls.MinTXID = min(ls.MinTXID, f.MinTXID)
			ls.MaxTXID = max(ls.MaxTXID, f.MaxTXID)
			ls.Bytes += f.Size
			if ls.Oldest.IsZero() || f.CreatedAt.Before(ls.Oldest) {
				ls.Oldest = f.CreatedAt
			}
			if f.CreatedAt.After(ls.Newest) {
				ls.Newest = f.CreatedAt
			}
		}
		out = append(out, ls)
	}
	if len(out) == 0 {
		return nil, withHint(fmt.Errorf("list %s: %w in %s", dbName(db), ErrNoBackups, st), "check the replica URL")
	}
	return out, nil
}

// Summary describes the latest state of one database in a replica.
type Summary struct {
	DB        string
	TXID      uint64    // latest TXID held by any level
	LastWrite time.Time // CreatedAt of the newest object
	PageSize  uint32
	Size      int64 // database size in bytes at TXID (Commit*PageSize)
	Files     int   // objects across the levels restore reads
	Bytes     int64
}

// Summarize lists db's levels and reads the header of one object ending at
// the latest TXID for the database size.
func Summarize(ctx context.Context, st s3backend.Store, db string) (Summary, error) {
	levels, err := ListLevels(ctx, st, db)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{DB: db}
	var newest s3backend.FileInfo
	for _, l := range levels {
		s.Files += len(l.Files)
		s.Bytes += l.Bytes
		for _, f := range l.Files {
			// The smallest object ending at the latest TXID is the cheapest to open.
			if f.MaxTXID > newest.MaxTXID || (f.MaxTXID == newest.MaxTXID && f.Size < newest.Size) {
				newest = f
			}
			if f.CreatedAt.After(s.LastWrite) {
				s.LastWrite = f.CreatedAt
			}
		}
	}
	hdr, err := ReadHeader(ctx, st, newest)
	if err != nil {
		return Summary{}, err
	}
	s.TXID = newest.MaxTXID
	s.PageSize = hdr.PageSize
	s.Size = int64(hdr.Commit) * int64(hdr.PageSize)
	return s, nil
}
