package fusefs

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/walfs/walfs/wal"
)

// Writers outside SQLite's protocol. SQLite opens its files without O_TRUNC
// or O_APPEND, never renames or links over them and creates a database only
// by writing it through a journal or WAL; cp, rsync, editors and backup tools
// do all of those. The mount tells the capturer (Capturer.Suspect) when it
// sees one, and again when the handle that did it closes, so that the
// capturer re-reads the database once the writer is done and no SQLite
// writer holds it (Mount.Quiet).

// outsideHandle is what watchOpen remembers of a handle it reported.
type outsideHandle struct{ rel, why string }

// watchOpen reports a handle on rel (a database, -wal or -journal) opened in
// a way SQLite never opens its files, or a database file created by anyone
// (SQLite's own creation is checked quickly and found unchanged).
func (fsys *fileSystem) watchOpen(fh fs.FileHandle, rel string, flags uint32, created bool) {
	var why string
	switch {
	case flags&syscall.O_TRUNC != 0:
		why = "opened with O_TRUNC"
	case flags&syscall.O_APPEND != 0:
		why = "opened with O_APPEND"
	case created && fsys.kind(rel) == kindDB:
		why = "created"
	default:
		return
	}
	fsys.cap.Suspect(rel, why)
	if fh != nil {
		fsys.outside.Store(fh, outsideHandle{rel: rel, why: why})
	}
}

// watchRelease reports a reported handle's file once more as it closes.
func (fsys *fileSystem) watchRelease(fh fs.FileHandle) {
	if v, ok := fsys.outside.LoadAndDelete(fh); ok {
		h := v.(outsideHandle)
		fsys.cap.Suspect(h.rel, h.why+" (closed)")
	}
}

// resized reports a database resized by truncate(2), or a WAL cut before a
// checkpoint had copied all of it into the database (SQLite truncates its
// WAL only after a complete checkpoint). A truncate to the size the file
// has changes no byte and is not reported: SQLite ends every complete WAL
// checkpoint so, sizing the database to its page count after writing the
// pages, and each report made the database be read whole again once quiet
// (a 100 MB database read for a 1-row commit).
func (fsys *fileSystem) resized(rel string, size int64) {
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(fsys.root.Path, rel), &st); err == nil && st.Size == size {
		return
	}
	switch fsys.kind(rel) {
	case kindDB:
		fsys.cap.Suspect(rel, "resized")
	case kindWAL:
		db, _ := walDB(rel)
		if !walCheckpointed(filepath.Join(fsys.root.Path, db+"-shm")) {
			fsys.cap.Suspect(rel, "its WAL was truncated before a checkpoint copied it")
		}
	}
}

// walCheckpointed reports whether the wal-index at shm says every frame of
// its WAL was copied into the database (wal.IndexCheckpointed); no -shm
// counts as not.
func walCheckpointed(shm string) bool {
	f, err := os.Open(shm)
	if err != nil {
		return false
	}
	defer f.Close() // read only
	return wal.IndexCheckpointed(f)
}
