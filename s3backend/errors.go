package s3backend

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Sentinel errors shared by every store. ErrNotFound lives in store.go.
var (
	// ErrInvalidFileInfo means a FileInfo cannot name an object: the database
	// path is not a clean relative slash path, the level is out of range or the
	// TXID range is empty. Permanent.
	ErrInvalidFileInfo = errors.New("invalid replica file info")

	// ErrSizeMismatch means the reader passed to Write yielded a different
	// number of bytes than the size argument. Nothing was stored. Permanent
	// for that reader.
	ErrSizeMismatch = errors.New("replica object size mismatch")

	// ErrInvalidRange means Open was asked to start past the end of an object.
	ErrInvalidRange = errors.New("replica read offset out of range")

	// ErrBucketNotFound means the S3 bucket does not exist. Permanent until
	// someone creates it.
	ErrBucketNotFound = errors.New("bucket not found")

	// ErrAccessDenied means the store refused the credentials or the
	// operation. Permanent until the configuration changes.
	ErrAccessDenied = errors.New("access denied")

	// ErrNoCredentials means no credentials were configured and the AWS
	// default chain (profiles, SSO, instance roles) found none either.
	ErrNoCredentials = errors.New("no credentials")

	// ErrWrongRegion means requests were signed for a region the bucket is
	// not in (PermanentRedirect, AuthorizationHeaderMalformed). The hint
	// names the bucket's region when the server said it.
	ErrWrongRegion = errors.New("wrong region")

	// ErrClockSkew means the store rejected the request's time
	// (RequestTimeTooSkewed); the hint says by how much the clocks differ.
	ErrClockSkew = errors.New("clock skew")

	// ErrUnreachable means the store could not be contacted at all
	// (connection refused, DNS failure, TLS handshake failure). Usually
	// transient for a configured store; permanent for a mistyped endpoint.
	ErrUnreachable = errors.New("store unreachable")

	// ErrInvalidConfig means a replica configuration or URL cannot be used.
	ErrInvalidConfig = errors.New("invalid replica config")
)

// HintError is an error with advice for the user on what to check. Callers
// that show errors to people print it whole; code branches on the wrapped
// error with errors.Is.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string {
	if e.Hint == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + " (hint: " + e.Hint + ")"
}

func (e *HintError) Unwrap() error { return e.Err }

// withHint wraps err with a hint; nil stays nil.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &HintError{Err: err, Hint: hint}
}

// Hint returns the hint carried by err (or anything it wraps), or "".
func Hint(err error) string {
	var h *HintError
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

// ValidateDB checks that db is usable as a database path inside a replica:
// "" (store rooted at one database) or a clean, relative, slash-separated
// path without "." or ".." elements.
func ValidateDB(db string) error {
	if db == "" {
		return nil
	}
	if db == "." || !fs.ValidPath(db) || path.Clean(db) != db || strings.Contains(db, "\\") {
		return fmt.Errorf("%w: database path %q must be a clean relative slash path", ErrInvalidFileInfo, db)
	}
	return nil
}

// ValidateLevel checks that level is one of the levels the layout allows
// (0..LevelSnapshot).
func ValidateLevel(level int) error {
	if level < 0 || level > LevelSnapshot {
		return fmt.Errorf("%w: level %d out of range 0..%d", ErrInvalidFileInfo, level, LevelSnapshot)
	}
	return nil
}

// ValidateFileInfo checks that info names a valid object key.
func ValidateFileInfo(info FileInfo) error {
	if err := ValidateDB(info.DB); err != nil {
		return err
	}
	if err := ValidateLevel(info.Level); err != nil {
		return err
	}
	if info.MinTXID == 0 || info.MinTXID > info.MaxTXID {
		return fmt.Errorf("%w: TXID range %d-%d", ErrInvalidFileInfo, info.MinTXID, info.MaxTXID)
	}
	return nil
}
