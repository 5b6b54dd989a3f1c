// Package fusefs is the FUSE adapter of walfs: a loopback file system over
// the data directory in which every file behaves as on a local disk.
//
// It owns the go-fuse wiring and nothing else. What happens to SQLite's files
// is reported to a Capturer (the replication engine): writes, truncations and
// fsyncs of "-wal" files; the moment a rollback journal stops being valid
// (deleted, truncated, header zeroed), which is a rollback-mode commit;
// writes and fsyncs of database files; removals and renames; database
// handles the kernel serves by passthrough; and changes outside SQLite's
// protocol (Suspect). Each FUSE method makes one call into the domain and
// converts its error once, here, to an errno. Around that it creates files
// as the calling user, controls the kernel's page cache of database files,
// and reads the kernel's lock table and mount table.
//
// A follower's mount (NewFollower, follow*.go) is a second, separate view of
// a data dir: read-only, uncached, every read passed through a HeaderPatcher
// of the follower core. It shares the mount conventions and nothing else.
//
// A bare loopback (NewLoopback, loopback.go) is go-fuse's own loopback with
// walfs's mount options and request counts: the floor walfs bench measures
// walfs against. It uses nothing of walfs's file system.
//
// It never parses SQLite's formats itself (package wal does: journal header
// zeroing, the database header) and never talks to a replica store.
package fusefs
