// Package follow keeps the databases of a data dir equal to a replica that
// another walfs (the primary, on another host) writes, so a read-only mount
// of that data dir (fusefs.NewFollower) can serve them to unmodified apps.
//
// What it owns:
//   - Follower: the set of followed databases (mu guards the map and each
//     dbState's fields that readers see through PatchHeader and Status).
//     Start, then the goroutine Go starts (Step), then CatchUp at a
//     promotion change database files and positions, one at a time under
//     applyMu; Verify holds applyMu too, so it never reads mid-update.
//   - dbState: one database's applied point (TXID, checksum, size) and what
//     it waits for.
//
// How a database moves forward (apply.go): the Source says a newer TXID
// exists; the Follower downloads the files that extend its TXID (the head
// object's file hints, else a listing of levels 0..3), checks every file's
// CRC before touching the database, then takes SQLite's EXCLUSIVE lock on
// the database through the mount (lock.go) — the lock every SQLite reader
// respects — writes the pages in place, checks the LTX checksum chain
// (pre-apply against what it holds, post-apply against what it wrote) and
// releases the lock. Readers therefore see one committed state of the
// primary from their first read to the end of their transaction. When the
// files no longer extend its TXID (compacted away, or a snapshot restarted
// the chain) or a check fails, the database is rebuilt by a full restore
// and copied in place under the same lock.
//
// What readers see (header.go): the primary's databases are usually in WAL
// mode, which a read-only reader cannot use without a writable -shm. The
// follower presents every database in rollback-journal mode by patching
// page 1 on the way out (read/write versions 1, a change counter that moves
// with every apply so readers drop their cache, the in-header size). The
// files on disk stay byte-identical to the replica, so their checksums prove
// it and a promotion continues from them.
//
// Crash safety: a marker (.walfs/follow/<db>.applying) is written and
// synced before a database is touched and removed after its position is
// saved; a database found with a marker at start is restored again.
package follow
