package s3backend

import (
	"context"
	"errors"
)

// ErrNotModified is returned by GetIfNoneMatch when the object's ETag still
// equals the one the caller passed: nothing was read. It is the expected
// answer of a poll that finds no change, not a failure.
var ErrNotModified = errors.New("not modified")

// ChangeReader is a ConditionalWriter's companion for pollers: it reads a
// small conditional object only when it changed, so an idle poller pays one
// small request and no body. The head record a primary publishes for its
// followers (package wal/head) is read this way.
//
// Contracts shared by every implementation (checked by
// storetest.RunConditional):
//   - Keys are those of ConditionalWriter (ValidateConditionalKey).
//   - GetIfNoneMatch with an empty etag is Get.
//   - With the ETag the object has now, it returns an error matching
//     ErrNotModified and no body; with any other ETag (a stale one, or
//     one of another object), the content and current ETag, as Get does.
//   - A missing object gives an error matching ErrNotFound, whatever the
//     etag.
//   - Methods are safe for concurrent use.
type ChangeReader interface {
	// GetIfNoneMatch returns key's content and ETag unless its ETag is
	// etag, in which case it returns an error matching ErrNotModified.
	GetIfNoneMatch(ctx context.Context, key, etag string) (body []byte, newETag string, err error)
}
