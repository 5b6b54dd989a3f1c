// Package head is the cheap change feed of a replica: a small mutable
// record, <replica root>/.walfs-head.json, that the primary rewrites after
// its uploads and that followers poll with one conditional GET (If-None-Match:
// an idle replica answers 304 with no body), instead of listing the levels of
// every database. Its format is in docs/format.md ("Head object").
//
// # Who owns what
//
//   - Record (record.go) is the format: parsing, validation, the window of
//     newest files per database (DB.add). Pure functions, no I/O.
//   - Publisher (publisher.go) is the primary's writer. Its mutex guards what
//     the uploader's callbacks change (the databases touched since Start) and
//     what Status reads; it is never held across a request. One goroutine,
//     started by Start, owns the publishing: it alone sends requests (Close
//     sends the last one after that goroutine ended), so at most one PUT is
//     in flight.
//   - Watcher (watcher.go) is a follower's reader: the last ETag and record
//     it saw, guarded by its mutex.
//
// The record is a hint, never the truth: every file it names is an ordinary
// LTX object a follower reads (and verifies) as a restore would, and an
// object retention or compaction removed since is simply not there (the
// follower then lists). The primary never blocks a commit or an upload on
// it: the uploader's callbacks only record what changed and wake the
// publishing goroutine.
//
// It imports s3backend (the store interfaces) and ltx (checksums) only. It
// must never publish while its fence check fails (a writer that lost its
// lease), and never drop a failed publish silently: failures are counted,
// kept in Status, logged, and retried with backoff.
package head
