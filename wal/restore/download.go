package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// Progress reports download progress. Options.Progress receives a copy each
// time bytes arrive; calls are serialized.
type Progress struct {
	Files, FilesDone int
	Bytes, BytesDone int64
}

// Download retry policy: a broken read is resumed from the byte it reached.
// Attempts that made progress are free; maxStalls attempts in a row without a
// byte give up.
const maxStalls = 5

// retryBackoff is the wait before the first retry; it doubles per stall.
// A variable so tests run fast.
var retryBackoff = 200 * time.Millisecond

// progressTracker aggregates progress from concurrent downloads.
type progressTracker struct {
	mu sync.Mutex
	p  Progress
	fn func(Progress)
}

func (t *progressTracker) update(bytes int64, files int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.BytesDone += bytes
	t.p.FilesDone += files
	if t.fn != nil {
		t.fn(t.p)
	}
}

// downloader fetches replica objects into temporary files in dir.
type downloader struct {
	st       s3backend.Store
	dir      string
	progress *progressTracker
	logger   *slog.Logger
}

// fetch downloads info into a new file in d.dir and returns its path. A read
// that breaks is resumed from the offset it reached (Store.Open's off).
func (d *downloader) fetch(ctx context.Context, info s3backend.FileInfo) (path string, err error) {
	path = filepath.Join(d.dir, fmt.Sprintf("%04x-%016x-%016x.ltx", info.Level, info.MinTXID, info.MaxTXID))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("create temporary file for %s: %w", s3backend.Key(info), err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write temporary file for %s: %w", s3backend.Key(info), cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()

	var off int64
	for stalls := 0; ; {
		n, err := d.copyFrom(ctx, f, info, off)
		off += n
		if err == nil && info.Size > 0 && off < info.Size {
			err = fmt.Errorf("object ended at byte %d of %d: %w", off, info.Size, io.ErrUnexpectedEOF)
		}
		if err == nil {
			break
		}
		if n > 0 {
			stalls = 0
		}
		stalls++
		if permanent(err) || stalls >= maxStalls {
			hint := "check that the replica is reachable and was not pruned while restoring, then retry"
			if errors.Is(err, errLocalWrite) {
				hint = "check free space and permissions in the output's directory"
			}
			return "", withHint(objectErr("download", info, err), hint)
		}
		d.logger.Warn("download broken, resuming", "key", s3backend.Key(info), "offset", off, "err", err)
		select {
		case <-time.After(retryBackoff << (stalls - 1)):
		case <-ctx.Done():
			return "", objectErr("download", info, ctx.Err())
		}
	}
	d.progress.update(0, 1)
	return path, nil
}

// copyFrom copies info from offset off to the end of f and returns the bytes
// written. More bytes than info.Size is a permanent error.
func (d *downloader) copyFrom(ctx context.Context, f *os.File, info s3backend.FileInfo, off int64) (int64, error) {
	rc, err := d.st.Open(ctx, info, off)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	w := &countingWriter{w: f, progress: d.progress}
	var r io.Reader = rc
	if info.Size > 0 {
		// Read one byte past the expected end to detect an object that grew.
		r = io.LimitReader(rc, info.Size-off+1)
	}
	n, err := io.Copy(w, r)
	if w.err != nil {
		return n, fmt.Errorf("%w: %w", errLocalWrite, w.err)
	}
	if err == nil && info.Size > 0 && off+n > info.Size {
		err = fmt.Errorf("%w: object is larger than the %d bytes listed", errTooLarge, info.Size)
	}
	return n, err
}

var (
	errTooLarge   = errors.New("object size changed")
	errLocalWrite = errors.New("write temporary file")
)

// permanent reports whether retrying a download cannot help.
func permanent(err error) bool {
	for _, target := range []error{
		context.Canceled, context.DeadlineExceeded, errTooLarge, errLocalWrite,
		s3backend.ErrNotFound, s3backend.ErrAccessDenied, s3backend.ErrInvalidRange,
		s3backend.ErrInvalidFileInfo, s3backend.ErrBucketNotFound, s3backend.ErrInvalidConfig,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// countingWriter reports the bytes written through it to the tracker.
// It remembers a write error so it is not mistaken for a network one.
type countingWriter struct {
	w        io.Writer
	progress *progressTracker
	err      error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 {
		c.progress.update(int64(n), 0)
	}
	if err != nil {
		c.err = err
	}
	return n, err
}
