// Package lease keeps a single writer per replica path. The writer holds a
// lease object, <replica root>/.walfs-lease.json, taken with
// If-None-Match: * (or, once the previous holder's lease expired or was
// released, with If-Match on the ETag read), renewed every TTL/3 with
// If-Match and released on clean shutdown by writing a "released" version
// of it (there is no conditional delete on every store; see
// s3backend.ConditionalWriter). The record names its holder — host, pid,
// start time — and when it expires; docs/format.md describes it.
//
// A second writer is refused with a one-line error naming the holder and
// when the lease expires (HeldError). A writer that cannot renew before its
// lease expires, or finds another holder, is fenced: Check returns an error
// matching ErrFenced, and Fence makes every Store.Write and Store.Delete
// fail with it, so uploads stop at once. A lease that merely expired
// (store unreachable) comes back when a renewal with If-Match succeeds,
// which proves nobody took over; a lease another holder took is lost for
// good (ErrLost, Lost, Options.OnLost).
//
// Open applies the mount's lease mode: auto probes conditional writes and,
// where the store lacks them (Backblaze B2 answers 501, s3rver ignores the
// headers), warns and runs without a lease; required refuses to start
// there; off takes no lease.
//
// Clocks: the record's expiry is wall-clock time, compared by other hosts
// with theirs. The holder fences itself TTL/6 before that expiry (measured
// from when it sent the renewal), so clocks may disagree by up to TTL/6
// (5 s with the default 30 s TTL) without two writers overlapping.
//
// It knows nothing of WAL, LTX or FUSE, imports no SDK and never writes
// anything but its one lease object (and a probe object under the root that
// it removes).
package lease
