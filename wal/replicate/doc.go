// Package replicate is walfs's replication engine. It receives committed
// transactions from package wal, gives each one a TXID, writes it to a local
// spool as an LTX file before the commit returns to SQLite, and uploads the
// spool to a s3backend.Store in batches.
//
// It keeps a checksum of every page of every database it tracks, so the LTX
// files it writes carry meaningful pre- and post-apply checksums and it can
// tell, on start, whether the local database still matches its replica.
//
// It also maintains the replica (maintain.go): compaction into levels 1..3,
// snapshots built from the replica's own files, and retention; it repairs a
// replica found inconsistent with a new snapshot of the local database
// (repair.go), and Compare proves that each replica's latest point is the
// live database (compare.go, `walfs verify`). It knows what
// the replica holds from an index that the store wrapper in index.go keeps
// up to date on every write and delete, seeded by the one listing at start,
// so maintenance of an idle database sends no request.
//
// It never talks FUSE and never parses WAL bytes itself.
package replicate
