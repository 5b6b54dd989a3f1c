package s3backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// tempPrefix starts the name of every in-flight file the FileStore writes.
// Such names never parse as LTX keys, so List and ListDatabases skip them.
const tempPrefix = ".walfs-tmp-"

// FileStore is a Store on a local directory tree, laid out exactly like the
// S3 keys (<root>/<db>/<level>/<min>-<max>.ltx), so a directory can be synced
// to a bucket and back. CreatedAt is kept as the file's modification time.
// The objects hold database pages, so the directories it creates are 0700
// and its files 0600 (os.CreateTemp's mode, which the rename keeps), whatever
// the umask; directories that already exist keep their mode.
type FileStore struct {
	root string
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store rooted at the directory root. Nothing is
// touched until Init or Write.
func NewFileStore(root string) *FileStore {
	return &FileStore{root: filepath.Clean(root)}
}

// Root returns the directory the store is rooted at.
func (s *FileStore) Root() string { return s.root }

// String describes the store for logs.
func (s *FileStore) String() string { return "file://" + filepath.ToSlash(s.root) }

// Init creates the root directory and checks it is writable.
func (s *FileStore) Init(ctx context.Context) error {
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return withHint(fmt.Errorf("init file store %s: %w", s.root, err),
			"check the replica path exists or can be created and that walfs may write there")
	}
	f, err := os.CreateTemp(s.root, tempPrefix+"init-*")
	if err != nil {
		return withHint(fmt.Errorf("init file store %s: %w", s.root, err),
			"the replica directory is not writable; check its permissions and free space")
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("init file store %s: remove probe: %w", s.root, err)
	}
	return nil
}

// ListDatabases walks the tree and returns every db path that has at least
// one LTX object; "" when the root itself holds level directories.
func (s *FileStore) ListDatabases(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // root not created yet, or a dir removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		if info, ok := ParseKey(filepath.ToSlash(rel)); ok {
			seen[info.DB] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list databases in %s: %w", s.root, err)
	}
	dbs := make([]string, 0, len(seen))
	for db := range seen {
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	return dbs, nil
}

// List returns the LTX files of db at level, sorted by MinTXID.
func (s *FileStore) List(ctx context.Context, db string, level int) ([]FileInfo, error) {
	if err := ValidateDB(db); err != nil {
		return nil, err
	}
	if err := ValidateLevel(level); err != nil {
		return nil, err
	}
	dir := s.path(LevelDir(db, level))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []FileInfo{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	infos := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, ok := ParseKey(path.Join(LevelDir(db, level), e.Name()))
		if !ok || info.DB != db || info.Level != level {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		} else if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		info.Size = fi.Size()
		info.CreatedAt = fi.ModTime().UTC()
		infos = append(infos, info)
	}
	SortFileInfos(infos)
	return infos, nil
}

// Stat returns the stored size and CreatedAt of one object.
func (s *FileStore) Stat(ctx context.Context, info FileInfo) (FileInfo, error) {
	if err := ValidateFileInfo(info); err != nil {
		return FileInfo{}, err
	}
	fi, err := os.Stat(s.path(Key(info)))
	if errors.Is(err, fs.ErrNotExist) {
		return FileInfo{}, fmt.Errorf("stat %s: %w", Key(info), ErrNotFound)
	} else if err != nil {
		return FileInfo{}, fmt.Errorf("stat %s: %w", Key(info), err)
	}
	info.Size = fi.Size()
	info.CreatedAt = fi.ModTime().UTC()
	return info, nil
}

// Open returns the content of one object starting at byte off.
func (s *FileStore) Open(ctx context.Context, info FileInfo, off int64) (io.ReadCloser, error) {
	if err := ValidateFileInfo(info); err != nil {
		return nil, err
	}
	key := Key(info)
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if off != 0 {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", key, err)
		}
		if off < 0 || off > fi.Size() {
			f.Close()
			return nil, fmt.Errorf("open %s at %d (size %d): %w", key, off, fi.Size(), ErrInvalidRange)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", key, err)
		}
	}
	return f, nil
}

// Write stores the object atomically: a temp file in the target directory is
// written, synced, stamped with CreatedAt and renamed over the key, and the
// directory is synced so the rename survives a crash.
func (s *FileStore) Write(ctx context.Context, info FileInfo, r io.Reader, size int64) (FileInfo, error) {
	if err := ValidateFileInfo(info); err != nil {
		return FileInfo{}, err
	}
	if size < 0 {
		return FileInfo{}, fmt.Errorf("%w: negative size %d", ErrInvalidFileInfo, size)
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now()
	}
	info.CreatedAt = info.CreatedAt.UTC()
	info.Size = size
	key := Key(info)
	if err := s.writeFile(ctx, key, r, size, info.CreatedAt); err != nil {
		return FileInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	return info, nil
}

func (s *FileStore) writeFile(ctx context.Context, key string, r io.Reader, size int64, mtime time.Time) (err error) {
	dst := s.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, newExactReader(ctxReader{ctx, r}, size)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return syncDir(dir)
}

// Delete removes the objects; missing ones are ignored. Empty directories are
// left in place: removing them would race with concurrent writers.
func (s *FileStore) Delete(ctx context.Context, infos []FileInfo) error {
	for _, info := range infos {
		if err := ValidateFileInfo(info); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.Remove(s.path(Key(info))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", Key(info), err)
		}
	}
	return nil
}

func (s *FileStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncUnsupported(err) {
		return err
	}
	return nil
}

// isSyncUnsupported reports fsync errors that some filesystems return for
// directories (they persist renames without it).
func isSyncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP)
}

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
