// Package fusefs is the FUSE adapter of walfs: a loopback file system over
// the data directory in which every file behaves as on a local disk.
//
// It owns the go-fuse wiring and nothing else. Writes, truncations and
// removals of SQLite "-wal" files are reported to a Capturer (the replication
// engine) after they reach the backing file; each FUSE method makes one call
// into the domain and converts its error once, here, to an errno. It never
// parses WAL bytes and never talks to a replica store.
package fusefs
