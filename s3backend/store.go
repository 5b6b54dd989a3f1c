package s3backend

import (
	"context"
	"errors"
	"io"
	"time"
)

// Level numbers used in the replica layout (Litestream v0.5 compatible).
const (
	// LevelL0 holds one LTX file per upload batch.
	LevelL0 = 0
	// MaxCompactionLevel is the highest compaction level (1..3 hold compactions).
	MaxCompactionLevel = 3
	// LevelSnapshot holds full-database snapshots, always named 1-<maxTXID>.
	LevelSnapshot = 9
)

// ErrNotFound is returned by Open when the object does not exist.
var ErrNotFound = errors.New("replica object not found")

// FileInfo describes one LTX object in a replica.
type FileInfo struct {
	DB        string    // database path relative to the replica root ("" when the store is rooted at one db)
	Level     int       // 0..3 or 9
	MinTXID   uint64    // first transaction in the file
	MaxTXID   uint64    // last transaction in the file
	Size      int64     // object size in bytes
	CreatedAt time.Time // when the newest transaction in the file was committed (Stat: as written; List: may be the upload time, see Stater)
}

// Store is a replica store: a flat namespace of immutable LTX objects laid out as
//
//	<root>/<db>/<level %04x>/<minTXID %016x>-<maxTXID %016x>.ltx
//
// Contracts shared by every implementation (checked by the conformance suite in
// s3backend/storetest):
//   - Objects are immutable. Writing an existing key again replaces it with the new
//     content (callers only ever rewrite identical content, so this is idempotent).
//   - Write is atomic: a reader sees either no object or the whole object.
//   - Open of a missing object returns an error matching ErrNotFound.
//   - List of a level with no objects returns an empty slice and nil error.
//   - Delete of a missing object is not an error.
//   - Init is idempotent and cheap; it checks that the store is reachable and
//     writable and returns an error with a hint when it is not.
//   - Methods are safe for concurrent use.
type Store interface {
	// Init checks the store is reachable and prepares it (creating the root
	// directory for file stores). Idempotent.
	Init(ctx context.Context) error

	// ListDatabases returns the paths (relative to the root, slash separated,
	// sorted) of every database that has at least one LTX object.
	ListDatabases(ctx context.Context) ([]string, error)

	// List returns the LTX objects of db at level, sorted by MinTXID.
	List(ctx context.Context, db string, level int) ([]FileInfo, error)

	// Open returns the content of one object. off > 0 starts reading there
	// (a ranged read, used to resume downloads).
	Open(ctx context.Context, info FileInfo, off int64) (io.ReadCloser, error)

	// Write stores size bytes from r as the object described by info
	// (DB, Level, MinTXID, MaxTXID, CreatedAt are used) and returns the stored
	// info with Size filled in.
	Write(ctx context.Context, info FileInfo, r io.Reader, size int64) (FileInfo, error)

	// Delete removes objects; missing objects are ignored.
	Delete(ctx context.Context, infos []FileInfo) error

	// String describes the store for logs; it never contains secrets.
	String() string
}
