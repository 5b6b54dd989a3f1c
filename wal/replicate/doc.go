// Package replicate is walfs's replication engine. It receives committed
// transactions from package wal, gives each one a TXID, writes it to a local
// spool as an LTX file before the commit returns to SQLite, and uploads the
// spool to a s3backend.Store in batches.
//
// It keeps a checksum of every page of every database it tracks, so the LTX
// files it writes carry meaningful pre- and post-apply checksums and it can
// tell, on start, whether the local database still matches its replica.
//
// It never talks FUSE and never parses WAL bytes itself.
package replicate
