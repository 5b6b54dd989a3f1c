package replicate

import (
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher wakes the capture of WALs written by the kernel directly
// (passthrough mode) through inotify on their directories.
type watcher struct {
	fd   int
	mu   sync.Mutex
	dirs map[int]string // watch descriptor -> backing directory
	seen map[string]bool
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &watcher{fd: fd, dirs: map[int]string{}, seen: map[string]bool{}}, nil
}

func (w *watcher) add(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[dir] {
		return nil
	}
	wd, err := unix.InotifyAddWatch(w.fd, dir, unix.IN_MODIFY)
	if err != nil {
		return err
	}
	w.dirs[wd] = dir
	w.seen[dir] = true
	return nil
}

// run delivers the backing path of every modified -wal file to fn until the
// watcher is closed.
func (w *watcher) run(fn func(walPath string)) {
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if err != nil || n <= 0 {
			if err == unix.EINTR {
				continue
			}
			return
		}
		var last string
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(raw), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if !strings.HasSuffix(name, "-wal") {
				continue
			}
			w.mu.Lock()
			dir := w.dirs[int(ev.Wd)]
			w.mu.Unlock()
			p := filepath.Join(dir, name)
			if p != last { // coalesce a burst of events for one file
				fn(p)
				last = p
			}
		}
	}
}

func (w *watcher) close() { unix.Close(w.fd) }
