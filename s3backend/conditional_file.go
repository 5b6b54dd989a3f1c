package s3backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

var (
	_ ConditionalWriter = (*FileStore)(nil)
	_ ChangeReader      = (*FileStore)(nil)
)

// The file store's conditional writes hold an exclusive flock on the root
// directory while they read, compare and replace (temp file, fsync, rename,
// fsync of the directory). Every process on the host that goes through
// these methods sees them as atomic. Over a network file system the lock is
// only as good as the server's flock emulation: do not share a file replica
// between hosts and rely on its lease.
//
// The ETag is the SHA-256 of the content, so rewriting identical bytes keeps
// the ETag (see the ConditionalWriter contract).

// fileETag names one version of a conditional object.
func fileETag(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

// Get reads a conditional object and its ETag.
func (s *FileStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	return s.GetIfNoneMatch(ctx, key, "")
}

// GetIfNoneMatch reads a conditional object unless its content still
// hashes to etag. The file is read either way: the saving is the caller's
// (it parses nothing).
func (s *FileStore) GetIfNoneMatch(ctx context.Context, key, match string) ([]byte, string, error) {
	if err := ValidateConditionalKey(key); err != nil {
		return nil, "", err
	}
	var body []byte
	var etag string
	err := s.withRootLock(ctx, func() error {
		var err error
		body, etag, err = s.readConditional(key)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	if etag == match && match != "" {
		return nil, "", fmt.Errorf("get %s: %w", key, ErrNotModified)
	}
	return body, etag, nil
}

// PutIfAbsent creates key unless it exists.
func (s *FileStore) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	return s.putConditional(ctx, key, body, func(exists bool, _ string) bool { return !exists })
}

// PutIfMatch replaces key if its content hashes to etag.
func (s *FileStore) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	return s.putConditional(ctx, key, body, func(exists bool, cur string) bool { return exists && cur == etag })
}

func (s *FileStore) putConditional(ctx context.Context, key string, body []byte, ok func(exists bool, etag string) bool) (string, error) {
	if err := ValidateConditionalKey(key); err != nil {
		return "", err
	}
	err := s.withRootLock(ctx, func() error {
		_, cur, err := s.readConditional(key)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !ok(exists, cur) {
			return ErrPreconditionFailed
		}
		return s.writeConditional(key, body)
	})
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return fileETag(body), nil
}

// DeleteKey removes a conditional object.
func (s *FileStore) DeleteKey(ctx context.Context, key string) error {
	if err := ValidateConditionalKey(key); err != nil {
		return err
	}
	err := s.withRootLock(ctx, func() error {
		p := s.path(key)
		if err := os.Remove(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return syncDir(filepath.Dir(p))
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func (s *FileStore) readConditional(key string) ([]byte, string, error) {
	body, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", ErrNotFound
	} else if err != nil {
		return nil, "", err
	}
	return body, fileETag(body), nil
}

// writeConditional replaces key atomically and durably (the same steps as
// Write, without the mtime).
func (s *FileStore) writeConditional(key string, body []byte) error {
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
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// withRootLock runs fn holding the exclusive lock on the root directory,
// waiting for it as long as ctx allows. Holders keep it for one small
// read-compare-write, so the wait is short; polling keeps it cancellable.
func (s *FileStore) withRootLock(ctx context.Context, fn func() error) error {
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return err
	}
	d, err := os.Open(s.root)
	if err != nil {
		return err
	}
	defer d.Close()
	wait := time.Millisecond
	for {
		locked, err := tryLockExclusive(d)
		if err != nil {
			return fmt.Errorf("lock %s: %w", s.root, err)
		}
		if locked {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w", s.root, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
	// Closing d drops the lock.
	return fn()
}
