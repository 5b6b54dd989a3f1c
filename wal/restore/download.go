package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
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

// partSize is the size of the ranged GETs a large object is fetched with,
// up to Options.Parallelism at once: one stream rarely fills the link to a
// remote store. Each part costs a request (and, since Store.Open reads to
// the end of the object, a connection closed early), so parts are large.
var partSize int64 = 32 << 20

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

// create makes the temporary file of o, for fetch to fill.
func (d *downloader) create(o *object) (*os.File, error) {
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		err = withHint(fmt.Errorf("create temporary file for %s: %w", s3backend.Key(o.info), err),
			"check free space and permissions in the output's directory")
		o.finish(err)
	}
	return f, err
}

// fetch downloads o into f (from create) and records the end in o. The
// parts of a large object are fetched in order by up to streams ranged GETs
// at once, so the part a reader waits for is always among those in flight;
// each part resumes from the offset it reached when a read breaks
// (Store.Open's off).
func (d *downloader) fetch(ctx context.Context, o *object, f *os.File, streams int) {
	var err error
	if len(o.parts) == 1 {
		err = d.fetchPart(ctx, o, f, 0)
	} else {
		partCtx, cancel := context.WithCancel(ctx)
		errs := make([]error, len(o.parts))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(max(streams, 1), len(o.parts)) {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(o.parts) && partCtx.Err() == nil; i = int(next.Add(1) - 1) {
					if errs[i] = d.fetchPart(partCtx, o, f, i); errs[i] != nil {
						cancel() // one part failing fails the object
					}
				}
			})
		}
		wg.Wait()
		cancel()
		err = firstCause(errs)
		if err == nil && ctx.Err() != nil { // canceled before every part started
			err = objectErr("download", o.info, ctx.Err())
		}
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = withHint(objectErr("download", o.info, fmt.Errorf("%w: %w", errLocalWrite, cerr)),
			"check free space and permissions in the output's directory")
	}
	if err == nil {
		d.progress.update(0, 1)
	}
	o.finish(err)
}

// firstCause returns the first error that is not a cancellation caused by
// another part failing, else the first error.
func firstCause(errs []error) error {
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// fetchPart downloads part i of o, resuming a broken read where it stopped.
func (d *downloader) fetchPart(ctx context.Context, o *object, f *os.File, i int) error {
	info := o.info
	for stalls := 0; ; {
		n, err := d.copyPart(ctx, f, o, i)
		if off, end := o.position(i); err == nil && end >= 0 && off < end {
			err = fmt.Errorf("object ended at byte %d of %d: %w", off, info.Size, io.ErrUnexpectedEOF)
		}
		if err == nil {
			return nil
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
			return withHint(objectErr("download", info, err), hint)
		}
		off, _ := o.position(i)
		d.logger.Warn("download broken, resuming", "key", s3backend.Key(info), "offset", off, "err", err)
		select {
		case <-time.After(retryBackoff << (stalls - 1)):
		case <-ctx.Done():
			return objectErr("download", info, ctx.Err())
		}
	}
}

// copyPart copies part i of o from where it stopped to its end (the last
// part: to the object's end) into f and returns the bytes written. More
// bytes than the object's listed size is a permanent error.
func (d *downloader) copyPart(ctx context.Context, f *os.File, o *object, i int) (int64, error) {
	off, end := o.position(i)
	last := i == len(o.parts)-1
	rc, err := d.st.Open(ctx, o.info, off)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	w := &countingWriter{w: io.NewOffsetWriter(f, off), progress: d.progress, obj: o, part: i}
	var r io.Reader = rc
	switch {
	case end >= 0 && last:
		// Read one byte past the expected end to detect an object that grew.
		r = io.LimitReader(rc, end-off+1)
	case end >= 0:
		r = io.LimitReader(rc, end-off)
	}
	n, err := io.Copy(w, r)
	if w.err != nil {
		return n, fmt.Errorf("%w: %w", errLocalWrite, w.err)
	}
	if err == nil && last && end >= 0 && off+n > end {
		err = fmt.Errorf("%w: object is larger than the %d bytes listed", errTooLarge, o.info.Size)
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

// countingWriter reports the bytes written through it to the tracker and
// to the object's readers. It remembers a write error so it is not mistaken
// for a network one.
type countingWriter struct {
	w        io.Writer
	progress *progressTracker
	obj      *object
	part     int
	err      error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 {
		c.progress.update(int64(n), 0)
		c.obj.grew(c.part, int64(n))
	}
	if err != nil {
		c.err = err
	}
	return n, err
}
