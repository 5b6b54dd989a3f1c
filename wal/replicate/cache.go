package replicate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// writeCache keeps a local copy of the files walfs uploads at levels below
// the highest compaction level — the inputs of the next compaction — so that
// compacting them costs no downloads. It is best effort: a failed cache write
// never fails an upload, a missing copy is downloaded instead, and nothing is
// cached when the disk is getting full (roomToSpare). Copies are
// dropped once compacted into the level above or deleted from the store; the
// cache is emptied at start, so it never outlives what this process knows.
type writeCache struct {
	dir string // "" disables the cache
}

// cacheable reports whether copies of info are worth keeping.
func cacheable(info s3backend.FileInfo) bool {
	return info.Level >= s3backend.LevelL0 && info.Level < s3backend.MaxCompactionLevel
}

func (c *writeCache) path(info s3backend.FileInfo) string {
	return filepath.Join(c.dir, filepath.FromSlash(s3backend.Key(info)))
}

// reset empties the cache.
//
// It moves the directory aside with one rename, however many copies a
// previous run left (removing 10,000 databases' copies took most of a 19 s
// start), and returns remove, which deletes what was moved aside (and what
// a killed run left moved aside) and may run behind the mount.
func (c *writeCache) reset() (remove func() error, err error) {
	if c == nil || c.dir == "" {
		return func() error { return nil }, nil
	}
	//walfs:ignore-error Glob fails only on a malformed pattern, and this one is built from a clean path
	old, _ := filepath.Glob(c.dir + ".old-*")
	aside := fmt.Sprintf("%s.old-%d", c.dir, time.Now().UnixNano())
	switch err := os.Rename(c.dir, aside); {
	case err == nil:
		old = append(old, aside)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return func() error {
		var errs []error
		for _, p := range old {
			errs = append(errs, os.RemoveAll(p))
		}
		return errors.Join(errs...)
	}, nil
}

// cacheTee receives the bytes of one upload on their way to the store.
type cacheTee struct {
	c      *writeCache
	info   s3backend.FileInfo
	f      *os.File
	failed bool
}

// begin starts caching an upload; nil when the file is not cached.
func (c *writeCache) begin(info s3backend.FileInfo) *cacheTee {
	if c == nil || c.dir == "" || !cacheable(info) {
		return nil
	}
	dst := c.path(info)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil
	}
	if !roomToSpare(c.dir, info.Size) {
		return nil // the app needs the space more; compaction downloads instead
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return nil
	}
	return &cacheTee{c: c, info: info, f: f}
}

// Write never fails: a cache that cannot keep up is abandoned, not the upload.
func (t *cacheTee) Write(p []byte) (int, error) {
	if !t.failed {
		if _, err := t.f.Write(p); err != nil {
			t.failed = true
		}
	}
	return len(p), nil
}

// end keeps the copy when the upload succeeded and the copy is whole.
func (t *cacheTee) end(uploaded bool) {
	if t == nil {
		return
	}
	err := t.f.Close()
	if !uploaded || t.failed || err != nil || os.Rename(t.f.Name(), t.c.path(t.info)) != nil {
		os.Remove(t.f.Name()) //walfs:ignore-error best effort, like the whole cache: the next start empties it
	}
}

// open returns the cached copy of info, or nil when there is none.
func (c *writeCache) open(info s3backend.FileInfo) *os.File {
	if c == nil || c.dir == "" || !cacheable(info) {
		return nil
	}
	f, err := os.Open(c.path(info))
	if err != nil {
		return nil
	}
	if fi, err := f.Stat(); err != nil || (info.Size > 0 && fi.Size() != info.Size) {
		f.Close() //walfs:ignore-error read only; the copy is not used
		return nil
	}
	return f
}

// drop forgets the copies of infos.
func (c *writeCache) drop(infos ...s3backend.FileInfo) {
	if c == nil || c.dir == "" {
		return
	}
	for _, info := range infos {
		//walfs:ignore-error a copy that cannot be removed costs only disk space until the next start empties the cache
		os.Remove(c.path(info))
	}
}
