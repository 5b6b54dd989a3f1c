package follow

import (
	"context"
	"fmt"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// Latest is a database's newest point in the replica, as a Source saw it.
type Latest struct {
	TXID     uint64
	Checksum ltx.Checksum // post-apply checksum at TXID; 0 when unknown
	Commit   time.Time    // commit time of TXID; zero when unknown
	// Files are recent objects that may extend a follower's TXID without a
	// listing (hints; may be empty).
	Files []s3backend.FileInfo
	// Deleted: the primary deleted the database after TXID; its objects
	// may stay in the store, but followers remove their copy.
	Deleted bool
}

// Source tells a Follower what the replica holds.
type Source interface {
	// Poll returns the newest point of every database in the replica.
	// changed is false (and dbs nil) when nothing changed since the
	// previous Poll.
	Poll(ctx context.Context) (dbs map[string]Latest, changed bool, err error)
	// Requests describes what one Poll costs, for logs and status.
	String() string
}

// listSource follows a replica by listing it: for replicas nobody publishes
// a head object for (Litestream, older walfs). Each Poll lists the
// databases and every level of each.
type listSource struct {
	st s3backend.Store
}

// ListSource returns a Source that lists st on every Poll.
func ListSource(st s3backend.Store) Source { return listSource{st: st} }

func (s listSource) String() string { return "listing the replica on every poll" }

func (s listSource) Poll(ctx context.Context) (map[string]Latest, bool, error) {
	dbs, err := s.st.ListDatabases(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("list databases: %w", err)
	}
	out := make(map[string]Latest, len(dbs))
	for _, db := range dbs {
		files, err := listAll(ctx, s.st, db, true)
		if err != nil {
			return nil, false, err
		}
		var l Latest
		for _, f := range files {
			if f.MaxTXID > l.TXID {
				l.TXID, l.Commit = f.MaxTXID, f.CreatedAt
			}
		}
		if l.TXID == 0 {
			continue
		}
		l.Files = files
		out[db] = l
	}
	return out, true, nil
}

// listAll lists levels 0..3 of db, and the snapshot level when snapshots.
func listAll(ctx context.Context, st s3backend.Store, db string, snapshots bool) ([]s3backend.FileInfo, error) {
	levels := []int{s3backend.LevelL0, 1, 2, s3backend.MaxCompactionLevel}
	if snapshots {
		levels = append(levels, s3backend.LevelSnapshot)
	}
	var all []s3backend.FileInfo
	for _, lvl := range levels {
		infos, err := st.List(ctx, db, lvl)
		if err != nil {
			return nil, fmt.Errorf("list level %d of %s: %w", lvl, dbLabel(db), err)
		}
		all = append(all, infos...)
	}
	return all, nil
}

func dbLabel(db string) string {
	if db == "" {
		return "the database at the replica root"
	}
	return db
}
