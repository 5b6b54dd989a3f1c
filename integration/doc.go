// Package integration holds walfs's end-to-end tests: they build the real
// walfs binary, mount it for real over /dev/fuse, drive real SQLite (python3's
// sqlite3 module) through the mount, talk to real S3 servers started on
// 127.0.0.1, and restore with walfs and with Litestream.
//
// Set WALFS_TEST_DISALLOW_SKIP=1 (CI does) to turn every skip into a failure.
package integration
