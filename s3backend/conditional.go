package s3backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Sentinels of conditional writes.
var (
	// ErrPreconditionFailed means a conditional write or delete found the
	// object in another state than the caller expected: PutIfAbsent found it
	// present, PutIfMatch or DeleteIfMatch found another ETag (or, for
	// PutIfMatch, no object). Nothing was changed. Permanent for that ETag:
	// read the object again before deciding what to do.
	ErrPreconditionFailed = errors.New("precondition failed")

	// ErrConditionalUnsupported means the store does not do conditional
	// writes: it refused the condition (Backblaze B2 answers 501
	// NotImplemented) or, as ProbeConditional found out, ignores it.
	// Permanent for the store.
	ErrConditionalUnsupported = errors.New("conditional writes not supported")

	// ErrInvalidKey means a key cannot name a conditional object: it is not
	// a clean relative slash path, or it would be taken for an LTX object.
	// Permanent.
	ErrInvalidKey = errors.New("invalid conditional object key")
)

// MaxConditionalSize bounds a conditional object: the S3 store's Get refuses
// a larger one. They are small records (the lease is a few hundred bytes,
// the head record a few KiB per database), never LTX files; writers keep
// them below it.
const MaxConditionalSize = 1 << 20

// ConditionalWriter is a store that can create, replace and delete small
// objects only when they are in the state the caller last saw. It is the
// building block of the replica lease (package s3backend/lease); LTX files
// never go through it.
//
// Contracts shared by every implementation (checked by
// storetest.RunConditional):
//   - Keys are relative to the replica root, like Key's, and must pass
//     ValidateConditionalKey: they can never be mistaken for LTX objects, so
//     List and ListDatabases never show them.
//   - An ETag is an opaque string naming one version of an object. Writing
//     different content always yields a different ETag. Writing the same
//     bytes again may yield the same ETag (the file store hashes the
//     content), so callers that need to tell versions apart put something
//     unique in every body (the lease carries a sequence number).
//   - Each method is atomic with respect to every other conditional method
//     on the same key, from any goroutine and (for the file store: on one
//     host) any process: of two writers racing from one ETag, exactly one
//     succeeds and the other gets ErrPreconditionFailed.
//   - A store that cannot honour a condition returns an error matching
//     ErrConditionalUnsupported, never a silent unconditional write — as far
//     as it can tell: some S3-compatible stores ignore the headers, which
//     only ProbeConditional detects. Run it before relying on a store.
//   - There is no conditional delete: MinIO ignores If-Match on DELETE and
//     removes the object anyway (measured with the pinned release), so a
//     delete can never be part of a protocol. Release a record by writing a
//     "released" version of it with PutIfMatch instead.
//   - Methods are safe for concurrent use.
type ConditionalWriter interface {
	// Get returns an object's content and ETag, or an error matching
	// ErrNotFound.
	Get(ctx context.Context, key string) (body []byte, etag string, err error)

	// PutIfAbsent creates key with body unless it exists, and returns the
	// new ETag. An existing object gives ErrPreconditionFailed. (A request
	// whose answer was lost and that the client retried also gives
	// ErrPreconditionFailed although its own first attempt created the
	// object: callers compare the content to tell.)
	PutIfAbsent(ctx context.Context, key string, body []byte) (etag string, err error)

	// PutIfMatch replaces key with body if its current ETag is etag, and
	// returns the new ETag. Another ETag or no object gives
	// ErrPreconditionFailed.
	PutIfMatch(ctx context.Context, key string, body []byte, etag string) (newETag string, err error)

	// DeleteKey removes key unconditionally; a missing object is not an
	// error. For cleaning up probe objects only: it is not safe against a
	// concurrent writer.
	DeleteKey(ctx context.Context, key string) error
}

// ValidateConditionalKey checks that key can name a conditional object: a
// clean relative slash path that ParseKey rejects, so it can never collide
// with, or be listed as, an LTX object.
func ValidateConditionalKey(key string) error {
	if key == "" || ValidateDB(key) != nil {
		return fmt.Errorf("%w: %q must be a clean relative slash path", ErrInvalidKey, key)
	}
	if _, ok := ParseKey(key); ok {
		return fmt.Errorf("%w: %q would be taken for an LTX object", ErrInvalidKey, key)
	}
	if strings.HasPrefix(path.Base(key), tempPrefix) {
		return fmt.Errorf("%w: %q uses the file store's temp-file prefix %s", ErrInvalidKey, key, tempPrefix)
	}
	return nil
}

// ProbeConditional checks with a fresh probe object under the root that cw
// honours every condition: a second PutIfAbsent of the same key must fail,
// PutIfMatch must fail with a stale ETag and succeed with the current one,
// and Get must return the content and ETag PutIfMatch wrote. It returns nil when all
// hold, an error matching ErrConditionalUnsupported (saying which step
// failed) when the store refuses or ignores a condition, and any other error
// unchanged (the store is unreachable, access is denied). The probe object
// is removed afterwards, best effort.
func ProbeConditional(ctx context.Context, cw ConditionalWriter) (err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	key := ".walfs-probe-" + hex.EncodeToString(rnd[:]) + "-conditional"
	unsupported := func(format string, args ...any) error {
		return fmt.Errorf("probe conditional writes: %w: %s", ErrConditionalUnsupported, fmt.Sprintf(format, args...))
	}

	first, err := cw.PutIfAbsent(ctx, key, []byte("walfs conditional probe 1"))
	if err != nil {
		return fmt.Errorf("probe conditional writes: create %s: %w", key, err)
	}
	defer func() { _ = cw.DeleteKey(context.WithoutCancel(ctx), key) }()

	switch _, err := cw.PutIfAbsent(ctx, key, []byte("walfs conditional probe 2")); {
	case err == nil:
		return unsupported("the store ignores If-None-Match: a second create of the same key succeeded")
	case !errors.Is(err, ErrPreconditionFailed):
		return fmt.Errorf("probe conditional writes: create %s again: %w", key, err)
	}
	stale := first + "-stale"
	if strings.HasSuffix(first, `"`) {
		stale = strings.TrimSuffix(first, `"`) + `0"`
	}
	switch _, err := cw.PutIfMatch(ctx, key, []byte("walfs conditional probe 3"), stale); {
	case err == nil:
		return unsupported("the store ignores If-Match: a replace with a wrong ETag succeeded")
	case !errors.Is(err, ErrPreconditionFailed):
		return fmt.Errorf("probe conditional writes: replace %s with a wrong ETag: %w", key, err)
	}
	second, err := cw.PutIfMatch(ctx, key, []byte("walfs conditional probe 4"), first)
	switch {
	case errors.Is(err, ErrPreconditionFailed):
		return unsupported("a replace with the ETag the store returned failed (stores like Ceph 16 compare only unquoted ETags)")
	case err != nil:
		return fmt.Errorf("probe conditional writes: replace %s: %w", key, err)
	}
	body, etag, err := cw.Get(ctx, key)
	switch {
	case err != nil:
		return fmt.Errorf("probe conditional writes: read %s: %w", key, err)
	case !bytes.Equal(body, []byte("walfs conditional probe 4")):
		return unsupported("after the replace the store returned %q", body)
	case etag != second:
		return unsupported("the ETag the store returned on read (%s) differs from the one of the write (%s)", etag, second)
	}
	return nil
}
