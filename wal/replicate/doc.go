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
//
// # Who owns what
//
// Each database is served by four objects, each owning its state (their doc
// comments say how it is guarded):
//
//   - DB (db.go): the capture. Where the WAL or journal stands, the
//     checksum of every page, the last TXID. The mount's events reach it
//     through the Replicator (capture.go, passthrough.go, journal.go).
//   - spoolWriter (spoolwriter.go): the open spool segment and the records
//     waiting to be written to it; the spool's format is in spool.go.
//   - uploader (uploader.go, queue.go): what the store holds, and the
//     uploads. Others read it through Status and wait on it through WaitFor.
//   - dbMaint (maintain.go): compaction, snapshots, retention and repair of
//     the replica.
//
// The Replicator (replicator.go) keeps the set of databases, wires each
// one's objects when it opens it, and routes the mount's events to them.
//
// # Goroutines
//
// Per mount: the reconciler (reconcile.go), in passthrough mode the inotify
// watcher (watch_linux.go), and after Start, until the databases it found
// are resumed, resumeAll and its few workers. No goroutine or timer per
// database: two schedulers (sched.go) run every uploader's step and every
// database's maintenance step on a few workers, started only while a step
// is due, with one timer each; a quiet database holds only its state.
// Replicator.Close stops and joins them all. Everything else runs in its
// caller's goroutine: FUSE requests, and Flush, Verify, Compare, Reconcile
// and Status from the control socket.
//
// # Lock order
//
// A goroutine holding one of these locks takes only those below it:
//
//	dbMaint.repairMu  one repair at a time per database (repair.go)
//	DB.mu             the capture
//	uploader.upMu     one upload at a time per database
//	spoolWriter.mu    the open segment (held across its writes and fsyncs)
//
// Every other mutex is a leaf, held only to read or set a few fields and
// never while taking another lock: uploader.mu, dbMaint.mu, Replicator.mu, sched.mu,
// maintenance.mu, suspects.mu, watcher.mu and indexStore.mu. Methods lock
// only their own type's mutexes; other types ask (uploader.Status,
// dbMaint.status).
//
// No lock that other databases need is held across store I/O:
// Replicator.mu guards the set of databases only, and a database opens
// (resume lists the store) without it. Store requests are made under
// upMu and repairMu, which only this database's uploads and repairs
// wait for, and under DB.mu only where this database's commit must wait
// for the store (durability sync) or a check must see nothing new spooled
// (Compare).
package replicate
