package fusefs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
)

// failingCapturer fails every WAL write with err; nothing else is called.
type failingCapturer struct {
	Capturer
	err error
}

func (c failingCapturer) WALWrite(string, *os.File, int64, int) error { return c.err }

// logRecords sends each log record's message and attributes to a channel,
// so a test can wait for what a goroutine logs.
type logRecords chan string

func (l logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logRecords) WithGroup(string) slog.Handler            { return l }
func (l logRecords) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool { s += fmt.Sprintf(" %s=%v", a.Key, a.Value); return true })
	l <- s
	return nil
}

// A WAL write whose capture fails fails with the capture's errno and its
// bytes are zeroed. When zeroing fails too, the write fails with EIO
// whatever the capture said, and both errors are logged; so is a kernel that
// cannot drop the zeroed bytes from its cache (here: no mount, ENOSYS).
func TestFailedCaptureInvalidates(t *testing.T) {
	root := &fs.Inode{}
	fs.NewNodeFS(root, &fs.Options{}) // an inode with no kernel behind it
	write := func(t *testing.T, readOnly bool) (syscall.Errno, []byte, logRecords) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "app.db-wal")
		data := bytes.Repeat([]byte{0xab}, 3000)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		flag := os.O_RDWR
		if readOnly {
			flag = os.O_RDONLY
		}
		f, err := os.OpenFile(path, flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		logs := make(logRecords, 4)
		w := &walFile{f: f, ino: root, db: "app.db", log: slog.New(logs),
			cap: failingCapturer{err: fmt.Errorf("spool: %w", syscall.ENOSPC)}}
		n, errno := w.captured(1000, 0, 1000)
		if n != 0 {
			t.Errorf("a failed capture reported %d bytes written", n)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return errno, got, logs
	}

	t.Run("zeroed", func(t *testing.T) {
		errno, got, logs := write(t, false)
		if errno != syscall.ENOSPC {
			t.Errorf("errno %v, want ENOSPC from the capture", errno)
		}
		want := bytes.Repeat([]byte{0xab}, 3000)
		clear(want[1000:2000])
		if !bytes.Equal(got, want) {
			t.Error("the bytes of the failed write were not zeroed, or others were")
		}
		if got := <-logs; !strings.Contains(got, "cannot drop invalidated wal bytes") || !strings.Contains(got, "err=function not implemented") {
			t.Errorf("logged %q, want the cache drop's failure", got)
		}
	})
	t.Run("not zeroed", func(t *testing.T) {
		errno, got, logs := write(t, true)
		if errno != syscall.EIO {
			t.Errorf("errno %v, want EIO: the commit may still validate", errno)
		}
		if !bytes.Equal(got, bytes.Repeat([]byte{0xab}, 3000)) {
			t.Error("the read-only file changed")
		}
		// Logged from the request and from the goroutine that drops the
		// cache: in either order.
		both := <-logs + "\n" + <-logs
		for _, want := range []string{"not zeroed", "capture_err=spool: no space left on device", "bad file descriptor", "cannot drop invalidated wal bytes"} {
			if !strings.Contains(both, want) {
				t.Errorf("logged %q, want it to contain %q", both, want)
			}
		}
	})
}
