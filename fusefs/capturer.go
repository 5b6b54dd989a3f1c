package fusefs

import (
	"errors"
	"os"
	"syscall"
)

// Capturer receives what the mount sees happen to SQLite files. Database
// paths are relative to the data directory, slash separated, and name the
// main database file (the "-wal" suffix stripped).
//
// Methods are called from FUSE request goroutines. A non-nil error fails the
// file operation that triggered it; errors matching syscall.ENOSPC or
// syscall.EDQUOT surface as themselves, everything else as EIO.
type Capturer interface {
	// WALOpen is called when a -wal file is opened or created, before any
	// write through the handle.
	WALOpen(db string, f *os.File) error
	// WALWrite is called after n bytes were written at off to the -wal file.
	// When it fails, the mount invalidates the bytes just written so that
	// SQLite's recovery cannot replay a transaction walfs did not capture.
	WALWrite(db string, f *os.File, off int64, n int) error
	// WALTruncate is called after the -wal file was truncated to size.
	WALTruncate(db string, f *os.File, size int64) error
	// WALSync is called when SQLite fsyncs the -wal file (userspace mode
	// only: in passthrough mode the kernel syncs it).
	WALSync(db string) error
	// BeforeWALTruncate is called before a -wal file the kernel writes
	// (passthrough mode) is truncated. A non-nil error fails the truncation.
	BeforeWALTruncate(db string) error
	// JournalEnd is called just before db's rollback journal stops being
	// valid: before it is deleted, truncated, or its header zeroed. That is
	// SQLite's commit point in rollback-journal mode. A non-nil error fails
	// the operation and leaves the journal in place, so SQLite rolls back.
	JournalEnd(db string) error
	// JournalZeroed is called when a journal the kernel writes
	// (passthrough) is found with its header zeroed at a sync: SQLite
	// committed by zeroing it (journal_mode=PERSIST, locking_mode=EXCLUSIVE)
	// and still holds its write lock. header is the journal's first header
	// as it was at the journal's previous sync, or nil if no sync saw it.
	// A non-nil error fails the sync.
	JournalZeroed(db string, header []byte) error
	// Removed is called after a file was unlinked or renamed away.
	Removed(path string)
	// BeforeWrite is called before n bytes are written at off to any other
	// file (a database file): in WAL mode the write is a checkpoint, in
	// rollback-journal mode part of a transaction. A non-nil error fails the
	// write.
	BeforeWrite(path string, off int64, n int) error
	// DBSync is called when SQLite fsyncs a database file, before the file
	// is synced. A non-nil error fails the fsync.
	DBSync(path string) error
	// Suspect is called when a database, its -wal or its -journal changes
	// in a way SQLite's protocol does not explain (opened with O_TRUNC or
	// O_APPEND, renamed or linked over, resized, created by something
	// else), and again when the handle that did it is closed. The capturer
	// re-reads the database once no SQLite writer holds it (Mount.Quiet).
	Suspect(path, why string)
	// DBPassthrough is called when a handle on the database file at path
	// that the kernel serves without walfs (passthrough: BeforeWrite is not
	// called for its writes) is opened (open true) and when it is released.
	DBPassthrough(path string, open bool)
}

// errnoOf converts a domain error to the errno returned to the kernel.
func errnoOf(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, syscall.ENOSPC):
		return syscall.ENOSPC
	case errors.Is(err, syscall.EDQUOT):
		return syscall.EDQUOT
	default:
		return syscall.EIO
	}
}
