package fusefs

import (
	"context"
	"os"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/walfs/walfs/wal"
)

// journalDB returns the database a rollback journal path belongs to.
func journalDB(rel string) (string, bool) {
	if strings.HasSuffix(rel, "-journal") && len(rel) > len("-journal") {
		return strings.TrimSuffix(rel, "-journal"), true
	}
	return "", false
}

// journalFile serves a rollback journal through walfs in both capture modes:
// zeroing its header commits a transaction (PERSIST journal mode, EXCLUSIVE
// locking mode), and the capturer must see that write before it lands.
type journalFile struct {
	*fs.LoopbackFile
	f   *os.File // same descriptor as LoopbackFile's
	db  string
	cap Capturer
}

var (
	_ fs.FileWriter   = (*journalFile)(nil)
	_ fs.FileWritever = (*journalFile)(nil)
	_ fs.FileFsyncer  = (*journalFile)(nil)
)

func (fsys *fileSystem) openJournal(db, path string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	f, err := os.OpenFile(path, int(flags)|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	return &journalFile{LoopbackFile: fs.NewLoopbackFileFromOS(f), f: f, db: db, cap: fsys.cap}, 0, 0
}

func (j *journalFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if wal.IsJournalCommit(off, data) {
		if err := j.cap.JournalEnd(j.db); err != nil {
			return 0, errnoOf(err)
		}
	}
	return j.LoopbackFile.Write(ctx, data, off)
}

func (j *journalFile) Writev(ctx context.Context, iov [][]byte, off int64) (uint32, syscall.Errno) {
	if off == 0 {
		var head []byte
		for _, b := range iov {
			head = append(head, b...)
			if len(head) >= wal.JournalHeaderSize {
				break
			}
		}
		if wal.IsJournalCommit(off, head) {
			if err := j.cap.JournalEnd(j.db); err != nil {
				return 0, errnoOf(err)
			}
		}
	}
	return j.LoopbackFile.Writev(ctx, iov, off)
}

// Fsync syncs the journal as SQLite asked: go-fuse's loopback always does a
// full fsync, and SQLite syncs the journal twice per commit while it holds
// the database's write lock (see syncFile).
func (j *journalFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return syncFile(j.f, flags)
}

// PassthroughFd keeps journals in userspace (see journalFile).
func (j *journalFile) PassthroughFd() (int, bool) { return -1, false }
