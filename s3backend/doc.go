// Package s3backend owns the replica store: the Store interface and its
// contracts (store.go), the Litestream v0.5 key layout (keys.go), the local
// file store (file.go), the S3 store (s3.go) and the translation of replica
// settings and URLs into a configured store (config.go).
//
// It is the only package that imports the AWS SDK. It knows nothing of WAL
// capture, LTX encoding or FUSE: it moves opaque immutable objects. It must
// never log or print secrets, never swallow an error on the write path (a lost
// error there is lost data) and never rely on a store feature that was not
// probed or declared by the provider profile.
package s3backend
