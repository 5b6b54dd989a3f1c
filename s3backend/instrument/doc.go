// Package instrument counts the calls walfs makes to its replica store. Wrap
// decorates a s3backend.Store so that every call is counted by operation, every
// failed call by operation and kind of error, and every call that names a
// database in a sliding one-hour window for that database; `walfs status` and
// the Prometheus metrics read the counts from a Counter.
//
// It only observes: it never changes arguments, results or errors, never
// retries, never reads object bodies and never logs. It keeps the optional
// interfaces of the real stores (Stater, ConditionalWriter, ChangeReader,
// Prober), so code that type-asserts them on the wrapped store keeps
// working. One call is one Store method call, whatever it costs on the wire
// (a multipart upload, a paged listing or a batch delete of more than 1000
// keys is one call).
package instrument
