// Package s3backend owns the replica store: the Store interface and its
// contracts (store.go), the Litestream v0.5 key layout (keys.go), the local
// file store (file.go), the S3 store (s3.go) and the translation of replica
// settings and URLs into a configured store (config.go).
//
// On the store, every object is an immutable LTX file at
// <root>/<db>/<level %04x>/<minTXID %016x>-<maxTXID %016x>.ltx. Its commit
// time travels with it: as user metadata litestream-timestamp (RFC 3339,
// nanoseconds) on S3, as the file's mtime in the file store. Nothing else is
// stored (no manifest); readers list the level prefixes.
//
// Provider quirks come from package providers as data; this package applies
// them to the AWS SDK (checksum mode, addressing, payload signing, headers,
// concurrency, request rate). Request pacing lives in the SDK's middleware
// stack rather than in a Store wrapper because it must count every attempt
// and every multipart part, which the Store interface does not see.
//
// It is the only package that imports the AWS SDK. It knows nothing of WAL
// capture, LTX encoding or FUSE: it moves opaque immutable objects. It must
// never log or print secrets, never swallow an error on the write path (a lost
// error there is lost data) and never rely on a store feature that was not
// probed or declared by the provider profile.
package s3backend
