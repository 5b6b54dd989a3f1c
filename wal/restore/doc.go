// Package restore rebuilds a SQLite database from a replica: it plans which
// LTX objects to read (the newest snapshot at or before the target, then the
// fewest files across the compaction levels that extend the TXID range
// contiguously), downloads them in parallel into temporary files next to the
// output (a large object as several ranged GETs), applies each in TXID order
// while it downloads, page by page with constant memory, verifies every
// file's CRC, the pre-/post-apply checksum chain and the whole-database
// checksum where the files track one, runs SQLite's quick_check or
// integrity_check, and only then renames the result into place. RestoreAll
// does that for every database of a replica.
//
// A timestamp target reads the exact commit time of only the few objects
// around the target in each level (pitr.go), never one request per object.
//
// It owns the reading side of the replica format described in docs/format.md
// and knows nothing of WAL capture, FUSE or how a store talks to its backend.
//
// It must never leave a partial database at the output path, never overwrite
// an existing database unless told to (Options.Force), never hold a whole
// database or a whole LTX file in memory, and never report success for a
// database whose checksum or integrity check failed.
package restore
