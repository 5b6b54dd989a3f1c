// Package errcheck finds errors that walfs code drops without saying why.
// Its test runs it over the capture and upload path (wal/... and fusefs) and
// fails on any finding, so a new dropped error fails `go test ./...`.
//
// The rule, applied to non-test Go files:
//
//   - blank: an error-typed value assigned to the blank identifier, as in
//     `_ = f()`, `n, _ := w.Write(p)` or `_ = err`;
//   - call: a call statement (also `go f()`) whose last result is an error;
//   - defer: `defer f()` whose last result is an error, unless it is a Close
//     of a read-only handle. A deferred Close (method Close, or a function
//     Close(fd)) is a finding when the same function writes through that
//     handle — calls a write-like method on it (Write, WriteAt, WriteString,
//     WriteByte, WriteRune, ReadFrom, Truncate, Chmod, Chown, Fallocate),
//     passes it to a write-like function (Write*, Pwrite*, Ftruncate,
//     Fallocate) or hands it to a parameter of an io writer type — and does
//     not also close it with the error checked (then the deferred Close is
//     only the safety net for early returns). A Sync is not a write here: an
//     fsync whose error is checked already reported what a close could. Any
//     other deferred call that drops an error (os.Remove, Sync, Rollback,
//     ...) is a finding: it is cleanup whose failure nobody learns of.
//
// Calls documented never to return a non-nil error are not findings: the
// Write methods of *bytes.Buffer and *strings.Builder and of a hash.Hash.
// Errors a deferred function literal drops are checked like any other code:
// `defer func() { f.Close() }()` is a call finding.
//
// A deliberate ignore is marked where it happens, with a reason:
//
//	_ = os.Remove(tmp) //walfs:ignore-error best effort: the next start removes leftovers
//
// The comment applies to the statement on its own line or, alone on a line,
// to the statement on the next line. A directive without a reason, or one
// that marks no finding, is itself a finding, so marks cannot go stale.
//
// A finding names its file and line, the enclosing declared function and
// the callee whose error it drops.
package errcheck
