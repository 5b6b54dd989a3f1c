package head

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// Key is the head object's key under the replica root.
const Key = ".walfs-head.json"

// Version is the format version this package writes and reads.
const Version = 1

// MaxFiles is how many of a database's newest uploaded files a record names.
const MaxFiles = 32

// ErrUnreadable means a head object exists but is not a record this walfs
// can use (damaged, or written by a newer version). A follower falls back to
// listing; the publisher replaces it.
var ErrUnreadable = errors.New("unreadable head record")

// ErrOverflow means the head object says the replica has more databases
// than one record can name: followers list the replica instead. It matches
// ErrUnreadable, so a follower that knows nothing of it lists too.
var ErrOverflow = fmt.Errorf("%w: the replica has more databases than one record names; list it", ErrUnreadable)

// Record is the content of the head object (JSON).
type Record struct {
	Version int    `json:"version"`
	Seq     uint64 `json:"seq"` // grows with every write, by any writer
	// Written is the writer's clock when it wrote this version.
	Written time.Time `json:"written"`
	// Writer names the primary that wrote it (the lease holder, or host and
	// pid without a lease).
	Writer string `json:"writer"`
	// DBs are the databases of the replica by path (as in LTX keys). A
	// database the primary deleted has no entry; one it has not uploaded
	// since it started keeps the entry an earlier run wrote.
	DBs map[string]DB `json:"dbs"`
	// Overflow says the databases did not fit in one record (each named
	// with one file): DBs is empty, and followers must list the replica.
	// Once written it stays: a primary that finds it keeps it (a record of
	// only the databases one run uploaded would not name the others).
	Overflow bool `json:"overflow,omitempty"`
}

// DB is where one database stands in the replica.
type DB struct {
	TXID     uint64       `json:"txid"`     // the newest TXID in the replica
	Checksum ltx.Checksum `json:"checksum"` // the database checksum after TXID
	Commit   time.Time    `json:"commit"`   // when TXID was committed
	// Files are the newest files the primary uploaded (level-0 files and its
	// snapshots), oldest first, at most MaxFiles: a follower at a TXID they
	// cover fetches what follows it with no listing.
	Files []File `json:"files"`
	// Deleted says the primary deleted the database after TXID (its
	// objects stay in the store, restorable). Followers remove their copy;
	// a database created again at the path comes back with a new entry.
	Deleted bool `json:"deleted,omitempty"`
}

// File names one LTX object of a database.
type File struct {
	Level int    `json:"level"`
	Min   uint64 `json:"min"`
	Max   uint64 `json:"max"`
	Size  int64  `json:"size"`
}

// Info is f as the store names it, for Open (CreatedAt is left zero).
func (f File) Info(db string) s3backend.FileInfo {
	return s3backend.FileInfo{DB: db, Level: f.Level, MinTXID: f.Min, MaxTXID: f.Max, Size: f.Size}
}

func fileOf(info s3backend.FileInfo) File {
	return File{Level: info.Level, Min: info.MinTXID, Max: info.MaxTXID, Size: info.Size}
}

// Parse reads a head record, checking that every database path and file
// could name an object of the replica.
func Parse(body []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(body, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if r.Version != Version {
		return Record{}, fmt.Errorf("%w: version %d (this walfs reads version %d; a newer walfs wrote it?)", ErrUnreadable, r.Version, Version)
	}
	if r.Overflow {
		return Record{Version: r.Version, Seq: r.Seq, Written: r.Written, Writer: r.Writer, DBs: map[string]DB{}, Overflow: true}, ErrOverflow
	}
	if r.DBs == nil {
		r.DBs = map[string]DB{}
	}
	for db, e := range r.DBs {
		if err := s3backend.ValidateDB(db); err != nil || db == "" {
			return Record{}, fmt.Errorf("%w: database %q: not a replica path", ErrUnreadable, db)
		}
		for i, f := range e.Files {
			if err := s3backend.ValidateFileInfo(f.Info(db)); err != nil {
				return Record{}, fmt.Errorf("%w: database %q: %v", ErrUnreadable, db, err)
			}
			if f.Max > e.TXID || (i > 0 && f.Max <= e.Files[i-1].Max) {
				return Record{}, fmt.Errorf("%w: database %q: files out of order or past txid %d", ErrUnreadable, db, e.TXID)
			}
		}
	}
	return r, nil
}

// marshal encodes r compactly.
func (r Record) marshal() ([]byte, error) {
	if r.DBs == nil {
		r.DBs = map[string]DB{}
	}
	return json.Marshal(r)
}

// add returns e after the upload of f, which brought the database to txid:
// f is appended to the window and the oldest files beyond limit are dropped.
// A file that does not follow the window (a lineage the window does not
// belong to: the database was recreated, or restored to an older point)
// drops the files it overlaps. e's slice is never changed: records share
// them.
func (e DB) add(f File, txid uint64, sum ltx.Checksum, commit time.Time, limit int) DB {
	// Files a follower could still chain from: those before f. A snapshot
	// covers 1..Max, so only files before its end stay.
	keepBelow := f.Min
	if f.Level == s3backend.LevelSnapshot {
		keepBelow = f.Max
	}
	files := make([]File, 0, min(len(e.Files)+1, limit))
	for _, old := range e.Files {
		if old.Max < keepBelow {
			files = append(files, old)
		}
	}
	files = append(files, f)
	if len(files) > limit {
		files = slices.Clone(files[len(files)-limit:])
	}
	return DB{TXID: txid, Checksum: sum, Commit: commit.UTC(), Files: files}
}

// trimmed returns e with only its newest n files.
func (e DB) trimmed(n int) DB {
	if len(e.Files) > n {
		e.Files = e.Files[len(e.Files)-n:]
	}
	return e
}
