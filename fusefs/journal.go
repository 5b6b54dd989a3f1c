package fusefs

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
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

// journalFile serves a rollback journal. SQLite commits a rollback-journal
// transaction by ending its journal: deleting it, truncating it, or zeroing
// its header, and the capturer must see that moment before it passes.
//
// Deletes and truncations are requests the mount always sees (node.go), so
// where a database's journals end that way (journalEnds) the kernel writes
// them (passthrough): a journal write is then no FUSE round trip, which
// took a 1-row commit in DELETE mode from 0.28x to about 0.6x of native
// speed. Otherwise walfs serves every write, and sees the header being
// zeroed before the write lands (Write, Writev).
//
// Should a journal the kernel writes end by a zeroed header after all (the
// app switched to PERSIST or to exclusive locking), SQLite syncs it right
// after zeroing it, still under its write lock: Fsync finds the header gone
// and has the transaction captured from the header it kept at the
// journal's previous sync (JournalZeroed). With synchronous=OFF there is no
// sync; Release then reports the database for a re-read (Suspect), and the
// capturer's check of each commit's original page 1 ships it with the next
// commit at the latest.
type journalFile struct {
	*fs.LoopbackFile
	f    *os.File // same descriptor as LoopbackFile's
	db   string
	fsys *fileSystem
	io   *ioMode // the journal node's
	pt   bool    // the kernel does reads and writes (passthrough)

	mu       sync.Mutex
	hdr      []byte // kernel-written journals: the first header at the last sync where it was valid
	zeroSeen bool   // kernel-written journals: a zeroed header was reported
}

var (
	_ fs.FileWriter   = (*journalFile)(nil)
	_ fs.FileWritever = (*journalFile)(nil)
	_ fs.FileFsyncer  = (*journalFile)(nil)
	_ fs.FileReleaser = (*journalFile)(nil)
)

func (fsys *fileSystem) openJournal(n *node, db, path string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	f, err := os.OpenFile(path, int(flags)|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	return fsys.journalHandle(n, db, f, flags), 0, 0
}

// journalHandle serves the journal open at f, opened with flags (without
// O_APPEND).
func (fsys *fileSystem) journalHandle(n *node, db string, f *os.File, flags uint32) *journalFile {
	j := &journalFile{LoopbackFile: fs.NewLoopbackFileFromOS(f), f: f, db: db, fsys: fsys, io: &n.io}
	rw := flags&syscall.O_ACCMODE == syscall.O_RDWR // Fsync reads the header back
	j.pt, _ = n.io.open(f, func() bool { return fsys.passthrough && rw && fsys.journals.kernelMay(db) })
	return j
}

func (j *journalFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if wal.IsJournalCommit(off, data) {
		if err := j.zeroing(); err != nil {
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
			if err := j.zeroing(); err != nil {
				return 0, errnoOf(err)
			}
		}
	}
	return j.LoopbackFile.Writev(ctx, iov, off)
}

// zeroing has the transaction captured before SQLite zeroes the journal's
// header, and keeps the database's next journals in userspace.
func (j *journalFile) zeroing() error {
	if err := j.fsys.cap.JournalEnd(j.db); err != nil {
		return err
	}
	j.fsys.journals.ended(j.db, false)
	return nil
}

// Fsync syncs the journal as SQLite asked: go-fuse's loopback always does a
// full fsync, and SQLite syncs the journal twice per commit while it holds
// the database's write lock (see syncFile). For a journal the kernel
// writes it first looks for a header zeroed since the last sync.
func (j *journalFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if j.pt {
		if err := j.checkHeader(); err != nil {
			return errnoOf(err)
		}
	}
	return syncFile(j.f, flags)
}

// checkHeader reads the header of a journal the kernel writes: a valid one
// is kept; a zeroed one is a commit, captured now. Only the first sync that
// finds it zeroed reports it.
func (j *journalFile) checkHeader() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var b [wal.JournalHeaderSize]byte
	if n, err := j.f.ReadAt(b[:], 0); n < len(b) {
		if errors.Is(err, io.EOF) {
			return nil // too short to hold a header: nothing to check
		}
		return err
	}
	switch {
	case wal.IsJournalMagic(b[:]):
		j.hdr, j.zeroSeen = append(j.hdr[:0], b[:]...), false
	case wal.IsJournalCommit(0, b[:]) && !j.zeroSeen:
		j.fsys.journals.ended(j.db, false)
		if err := j.fsys.cap.JournalZeroed(j.db, j.hdr); err != nil {
			return err
		}
		j.zeroSeen = true
	}
	return nil
}

// Release reports a journal the kernel wrote and left with a zeroed header
// that no sync reported (synchronous=OFF): the database is re-read once no
// writer holds it.
func (j *journalFile) Release(ctx context.Context) syscall.Errno {
	if j.pt {
		j.mu.Lock()
		var b [wal.JournalHeaderSize]byte
		n, _ := j.f.ReadAt(b[:], 0) //walfs:ignore-error only a full zeroed header means anything here
		if n == len(b) && wal.IsJournalCommit(0, b[:]) && !j.zeroSeen {
			j.fsys.journals.ended(j.db, false)
			j.fsys.cap.Suspect(j.db, "its journal ended by a zeroed header no sync showed (synchronous=OFF with journal_mode=PERSIST or exclusive locking)")
		}
		j.mu.Unlock()
	}
	errno := j.LoopbackFile.Release(ctx)
	j.io.release(j.pt, fileStamp{})
	return errno
}

// PassthroughFd hands the kernel the backing file for journals whose
// commits the mount sees without their writes (see journalFile).
func (j *journalFile) PassthroughFd() (int, bool) {
	if j.pt {
		return j.LoopbackFile.PassthroughFd()
	}
	return -1, false
}
