// Package s3backend owns the replica store: the Store interface and its
// contracts (store.go), the Litestream v0.5 key layout (keys.go), the local
// file store (file.go), the S3 store (s3.go), the translation of replica
// settings and URLs into a configured store (config.go, resolve.go: Resolve
// reports every resolved value with its source and is what New builds on),
// how S3 requests are retried (retry.go), how S3 failures become one-line
// errors with hints naming the settings actually used (s3errors.go), and
// the probe behind `walfs config check --probe` (probe.go).
//
// On the store, every object is an immutable LTX file at
// <root>/<db>/<level %04x>/<minTXID %016x>-<maxTXID %016x>.ltx. Its commit
// time travels with it: as user metadata litestream-timestamp (RFC 3339,
// nanoseconds) on S3, as the file's mtime in the file store. There is no
// manifest; readers list the level prefixes. The only other objects are small
// records written with conditional writes (conditional.go), such as the lease
// of package s3backend/lease, under keys that never parse as LTX keys.
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
