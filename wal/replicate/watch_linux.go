package replicate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchCoalesce is how long the watcher lets WAL changes gather after a
// wake-up before it reads them. Under a stream of commits this turns one
// capture pass per commit into one per interval (the capture reads the same
// bytes either way, but each pass costs wake-ups, a stat and header reads);
// a quiet database still has a commit captured within this delay.
const watchCoalesce = 2 * time.Millisecond

// While commits stream (a wake-up within watchStreamGap of the last pass)
// changes gather for watchStreamCoalesce instead. Passes every 2 ms cost
// 1-row synchronous=FULL commits a quarter of their speed against passes
// every 5 ms (python, 5 runs each: 4,866 against 6,474 tx/s, the bare
// loopback 6,973); a commit in a stream waits for the upload interval
// anyway, and a lone commit still waits only watchCoalesce.
const (
	watchStreamCoalesce = 5 * time.Millisecond
	watchStreamGap      = 20 * time.Millisecond
)

// coalesceAfter is how long to let changes gather after a wake-up at now,
// when the last pass ended at last.
func coalesceAfter(now, last time.Time) time.Duration {
	if !last.IsZero() && now.Sub(last) < watchStreamGap {
		return watchStreamCoalesce
	}
	return watchCoalesce
}

// watcher wakes the capture of WALs written by the kernel directly
// (passthrough mode) through inotify on their directories. It also remembers
// which WALs changed since the capture last asked (takeDirty), so that a
// checkpoint polls the WAL once rather than before every page it writes.
type watcher struct {
	fd     int // inotify, non-blocking; read only under mu, -1 once closed
	stopfd int // eventfd that ends run

	mu    sync.Mutex
	dirs  map[int]string  // watch descriptor -> backing directory
	seen  map[string]bool // directories being watched
	dirty map[string]bool // -wal path -> modified since its last takeDirty
	known map[string]bool // -wal paths takeDirty was asked about
	buf   []byte
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd) //walfs:ignore-error the inotify fd was never used; the eventfd error is the answer
		return nil, err
	}
	return &watcher{
		fd: fd, stopfd: stop, dirs: map[int]string{}, seen: map[string]bool{},
		dirty: map[string]bool{}, known: map[string]bool{}, buf: make([]byte, 64<<10),
	}, nil
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
	w.mu.Lock()
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.stopfd), Events: unix.POLLIN}}
	w.mu.Unlock()
	var lastPass time.Time
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if fds[1].Revents != 0 || fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			return
		}
		time.Sleep(coalesceAfter(time.Now(), lastPass))
		w.mu.Lock()
		changed, err := w.drain()
		w.mu.Unlock()
		for _, p := range changed {
			fn(p)
		}
		lastPass = time.Now()
		if err != nil {
			return
		}
	}
}

// takeDirty reports whether walPath may have changed since the last
// takeDirty for it, and clears that mark. Every write that returned before
// this call has queued its inotify event already, so it is either drained
// here or was drained before; a write after it marks the path again. Paths
// in directories that are not watched are always dirty.
func (w *watcher) takeDirty(walPath string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.drain()
	d := err != nil || w.dirty[walPath] || !w.known[walPath] || !w.seen[filepath.Dir(walPath)]
	w.known[walPath] = true
	delete(w.dirty, walPath)
	return d
}

// markDirty makes the next takeDirty for walPath report a change (its
// capture failed and must be retried).
func (w *watcher) markDirty(walPath string) {
	w.mu.Lock()
	w.dirty[walPath] = true
	w.mu.Unlock()
}

// drain reads every queued event, marks the -wal files they name dirty and
// returns those paths, each once. On a queue overflow every -wal file in the
// watched directories counts as changed. Caller holds w.mu.
func (w *watcher) drain() ([]string, error) {
	var changed []string
	add := func(p string) {
		if !slices.Contains(changed, p) {
			changed = append(changed, p)
		}
		w.dirty[p] = true
	}
	for {
		n, err := unix.Read(w.fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return changed, nil
		}
		if err != nil || n <= 0 {
			for p := range w.known {
				w.dirty[p] = true
			}
			if err == nil {
				err = unix.EIO
			}
			return changed, err
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := w.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(raw), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for p := range w.known {
					add(p)
				}
				for dir := range w.seen {
					for _, p := range walFiles(dir) {
						add(p)
					}
				}
				continue
			}
			if strings.HasSuffix(name, "-wal") {
				add(filepath.Join(w.dirs[int(ev.Wd)], name))
			}
		}
	}
}

// walFiles lists the -wal files in dir.
func walFiles(dir string) []string {
	// A WAL missed here misses one wake-up, not data: it is captured at
	// its next write's event or before the next checkpoint.
	entries, _ := os.ReadDir(dir) //walfs:ignore-error a missed WAL misses a wake-up, not data (above)
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-wal") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// stop makes run return (soon: it may be delivering changes).
func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd >= 0 {
		//walfs:ignore-error an eventfd write fails only on counter overflow, which takes 2^64-2 stops
		unix.Write(w.stopfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// close stops run and the inotify watches; once run has returned (stop,
// then wait), nothing polls the descriptors it closes. takeDirty reports
// every path dirty from then on.
func (w *watcher) close() {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd >= 0 {
		unix.Close(w.fd)     //walfs:ignore-error only read: nothing is lost with it
		unix.Close(w.stopfd) //walfs:ignore-error an eventfd holds no data to lose
		w.fd = -1
	}
}
