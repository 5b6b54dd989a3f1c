package restore

import (
	"errors"
	"fmt"

	"github.com/walfs/walfs/s3backend"
)

// Sentinel errors. Errors returned by this package match one of these with
// errors.Is where the caller may want to branch; most also carry a hint for
// people (s3backend.Hint).
var (
	// ErrNoBackups means the replica path holds no LTX files for the database.
	ErrNoBackups = errors.New("no backups found")

	// ErrNoSnapshot means no snapshot (and no run of files from TXID 1)
	// exists at or before the target, so there is nothing to start from.
	ErrNoSnapshot = errors.New("no snapshot at or before the restore target")

	// ErrGap means a TXID range needed to reach the target is missing from
	// every level. A *GapError carries the range and the keys around it.
	ErrGap = errors.New("gap in replica")

	// ErrTargetUnreachable means the target lies outside the replica's range
	// or inside a compacted file that cannot be split.
	ErrTargetUnreachable = errors.New("restore target not reachable")

	// ErrOutputExists means the output (or a -wal/-journal beside it) exists
	// and Options.Force is not set.
	ErrOutputExists = errors.New("output exists")

	// ErrCorrupt means an LTX object failed to decode or its CRC did not match.
	ErrCorrupt = errors.New("corrupt replica object")

	// ErrChecksumMismatch means the rolling database checksum does not chain
	// from one file to the next, or the rebuilt database does not match the
	// last file's post-apply checksum.
	ErrChecksumMismatch = errors.New("database checksum mismatch")

	// ErrIntegrity means SQLite's quick_check or integrity_check reported
	// problems in the rebuilt database.
	ErrIntegrity = errors.New("integrity check failed")
)

// ObjectError is a failure tied to one replica object.
type ObjectError struct {
	Op  string // what was being done: "download", "apply", "verify", "read header"
	Key string // object key relative to the replica root (s3backend.Key)
	Err error
}

func (e *ObjectError) Error() string { return e.Op + " " + e.Key + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ObjectError) Unwrap() error { return e.Err }

// GapError reports TXIDs missing from the replica between two objects.
type GapError struct {
	From, To uint64 // first and last missing TXID
	Before   string // key of the object the chain reached, "" at the start
	After    string // key of the next object that exists
}

func (e *GapError) Error() string {
	before := e.Before
	if before == "" {
		before = "the start of the replica"
	}
	return fmt.Sprintf("gap in replica: transactions %d..%d are missing between %s and %s",
		e.From, e.To, before, e.After)
}

// Is makes errors.Is(err, ErrGap) true for a *GapError.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// objectErr wraps err as an ObjectError for info; nil stays nil.
func objectErr(op string, info s3backend.FileInfo, err error) error {
	if err == nil {
		return nil
	}
	return &ObjectError{Op: op, Key: s3backend.Key(info), Err: err}
}

// withHint attaches advice for people to err; nil stays nil.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &s3backend.HintError{Err: err, Hint: hint}
}

const (
	hintCorrupt = "the object is damaged in the replica or was damaged in transit; " +
		"retry, or restore an earlier point with --txid/--timestamp"
	hintOutputExists = "choose another output path with -o, or use --force to replace it"
	hintChecksum     = "the replica does not describe a consistent database at this point; " +
		"restore an earlier point with --txid/--timestamp and report the keys involved"
)
