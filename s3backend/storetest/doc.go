// Package storetest is the conformance suite for s3backend.Store: every store
// implementation (the file store always, S3 against MinIO and versitygw in the
// integration tests) runs Run and must pass every case. It checks the written
// contracts in store.go, as far as they are observable through the interface.
//
// It must never depend on a particular implementation or reach behind the
// interface (no peeking at files or buckets).
package storetest
