// Package wal reads the files SQLite writes — write-ahead logs, rollback
// journals, the database header — and captures WAL transactions as the
// SQLite connection writing them commits them.
//
// It owns five things:
//   - the WAL file format: the 32-byte file header ([Header], [ParseHeader]),
//     the 24-byte frame header ([FrameHeader], [ParseFrameHeader]), frame
//     offsets ([FrameOffset]) and the cumulative checksum in both byte orders
//     ([Checksum]);
//   - commit capture: [Capture] follows a WAL file as it is written, one write
//     at a time ([Capture.Wrote]) or by re-reading it when woken without knowing
//     what changed ([Capture.Poll]), and hands every transaction to a [Sink] the
//     moment its commit frame validates;
//   - the committed index of the current WAL generation ([Index]), so a snapshot
//     can be taken mid-life.
//   - the rollback journal format (journal.go has the layout): [ReadJournal]
//     names the pages a live journal protects ([Journal]), [IsJournalCommit]
//     recognises the header-zeroing write that commits in PERSIST journal mode
//     and EXCLUSIVE locking mode;
//   - the database file header ([ParseDBHeader]: page size, page count, WAL
//     mode) and the name of walfs's state directory in a data dir
//     ([StateDirName]), so the mount and the engine read them one way.
//
// The rule it implements is what the live SQLite connection that wrote the
// WAL treats as committed. That is SQLite's recovery rule (wal.c
// walIndexRecover) plus one extension for a checksum chain SQLite itself
// leaves broken:
//
//   - Recovery rule: a frame counts only if its salts equal the header's, its
//     page number is not zero and the checksum chain validates from the header
//     through it; a transaction is committed when such a chain reaches a frame
//     whose commit field is non-zero.
//   - Pending-rewrite rule: a frame whose salt-1, salt-2, checksum-1 and
//     checksum-2 are all zero, with a non-zero page number and a zero commit
//     field, also counts, with no checksum of its own; the chain then goes on
//     at the next frame from the checksum (0, 0) stored in it. Frames after it
//     must still carry the header's salts and validate from that seed, and a
//     commit frame that validates this way commits its whole transaction,
//     including the zeroed frames (their pages are in SQLite's wal-index).
//
// Why the extension: while an open transaction owes a checksum rewrite (a
// cache spill overwrote one of its frames in place, wal.c iReCksum), SQLite
// writes the header of every frame it appends with zero salts and checksums,
// and at commit walRewriteChecksums rewrites the headers from the first
// overwritten frame on, seeding the chain from the checksum stored in the
// frame before it. SQLite 3.40.1 does not clear iReCksum when ROLLBACK TO
// moves the end of the WAL back before that frame (later releases do). So
// after `SAVEPOINT a; <spilling statement>; ROLLBACK TO a; ...; COMMIT` the
// frames appended between the savepoint's end and the stale iReCksum keep
// zeroed headers, and the frames after them are chained from the (0, 0)
// stored in the last zeroed one. The connection's wal-index holds every frame
// up to the commit, so its readers and checkpoints see the transaction, while
// recovery (a reopen, or a copy of the files) stops at the first zeroed frame
// and drops it and every later transaction of that WAL generation.
// testdata/gen.py reproduces this (the savepoint-512 fixture). Garbage cannot
// pass the extension: the transaction still needs 64-bit checksums chained to
// a valid commit frame.
//
// A zeroed frame with a non-zero commit field never counts. SQLite writes one
// when the transaction's last frame comes before the stale iReCksum (the
// commit then rewrites nothing): the live connection treats that transaction
// as committed and chains the next transactions from whatever checksum lies in
// the frame before iReCksum, so neither rule can validate them and they are
// not captured until the next WAL restart.
//
// Capture never emits a transaction whose commit frame validates under
// neither rule and never misses one that does, including while SQLite
// rewrites frames of an open transaction (cache spill) and when it restarts
// the WAL after a checkpoint.
//
// Handed the WAL's wal-index (the -shm file, [Capture.PollIndexed]), a poll
// also applies the wal-index rule (indexed.go): the frames SQLite's
// wal-index header names as committed are taken on its word, checked against
// the file at its last commit (whose stored checksum chains through all of
// them) and at each page's newest frame, and only those frames are read. It
// reaches the same state as the two rules above, and also takes a
// transaction whose commit frame SQLite left zeroed, which every connection
// reading the wal-index treats as committed.
//
// What it must never do:
//   - any I/O other than ReadAt on the io.ReaderAt it is handed (no opening,
//     writing, truncating or stat-ing files; the caller reports sizes);
//   - import anything outside the standard library (it knows nothing of FUSE,
//     LTX or S3; the dependency test in this package holds that line);
//   - trust a single write: every emission is backed by a checksum chain
//     validated against the bytes in the file at that moment, or by a
//     wal-index header that passed every check of indexed.go;
//   - swallow an error: sink and read errors are returned to the caller.
//
// A Capture is not safe for concurrent use. The caller serialises all calls,
// and in [Capture.Wrote] mode also serialises them with the writes to the file
// (walfs holds the file's lock across the write and the call).
package wal
