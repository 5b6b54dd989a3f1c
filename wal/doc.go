// Package wal reads SQLite write-ahead logs and captures their transactions
// exactly as SQLite's own recovery would replay them.
//
// It owns three things:
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
//
// The rule it implements is SQLite's recovery rule (wal.c walIndexRecover): a
// frame counts only if its salts equal the header's, its page number is not
// zero and the checksum chain validates from the header through it; a
// transaction is committed exactly when such a chain reaches a frame whose
// commit field is non-zero. Capture never emits a transaction SQLite would not
// replay and never misses one it would, including while SQLite rewrites frames
// of an open transaction (cache spill) and when it restarts the WAL after a
// checkpoint.
//
// What it must never do:
//   - any I/O other than ReadAt on the io.ReaderAt it is handed (no opening,
//     writing, truncating or stat-ing files; the caller reports sizes);
//   - import anything outside the standard library (it knows nothing of FUSE,
//     LTX or S3; the dependency test in this package holds that line);
//   - trust a single write: every emission is backed by a checksum chain
//     validated against the bytes in the file at that moment;
//   - swallow an error: sink and read errors are returned to the caller.
//
// A Capture is not safe for concurrent use. The caller serialises all calls,
// and in [Capture.Wrote] mode also serialises them with the writes to the file
// (walfs holds the file's lock across the write and the call).
package wal
