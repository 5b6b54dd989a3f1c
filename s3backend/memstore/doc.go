// Package memstore is the in-memory replica store for tests: Store
// implements s3backend.Store, s3backend.Stater, s3backend.ConditionalWriter
// and s3backend.ChangeReader and passes the same conformance suite
// (s3backend/storetest) as the file store and S3, so a test that passes
// against it exercises the written contracts, not the quirks of a test
// double. Faults (failed calls, broken downloads, objects that vanish
// between List and Open) come from the Faulty wrapper, never from flags
// inside the store.
//
// It imports only the standard library and s3backend. It must never hold
// anything a test could not also see through the interface, except the
// explicit damage helpers (Rewrite) that stand in for a store changed
// behind the replicator's back.
package memstore
