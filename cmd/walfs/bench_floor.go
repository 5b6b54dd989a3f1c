package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/walfs/walfs/fusefs"
	"github.com/walfs/walfs/wal/replicate"
)

// floorName is the report's name for the bare go-fuse loopback (--floor).
const floorName = "bare go-fuse loopback"

// runLoopbackWorker serves a bare go-fuse loopback of src at mnt (walfs
// bench --worker-loopback SRC MNT) until it is unmounted, by SIGTERM or
// SIGINT or from outside (umount, fusermount3 -u). On the way out it
// writes the loopback's request counts as JSON to statsPath, if given.
func runLoopbackWorker(src, mnt string, passthrough bool, statsPath string, out io.Writer) error {
	src, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if mnt, err = filepath.Abs(mnt); err != nil {
		return err
	}
	// Before mounting: the parent may signal as soon as the mount appears.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	l, err := fusefs.NewLoopback(fusefs.LoopbackOptions{DataDir: src, MountPoint: mnt, Passthrough: passthrough})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bare go-fuse loopback of %s at %s (passthrough asked: %v, offered by the kernel: %v)\n", src, mnt, passthrough, l.KernelOffersPassthrough())
	var unmountErr error
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-sigs:
			if unmountErr = l.Unmount(false); unmountErr != nil {
				fmt.Fprintf(out, "%v; detaching it lazily\n", unmountErr)
				unmountErr = l.Unmount(true)
			}
		case <-stop:
		}
	}()
	l.Wait()
	close(stop)
	wg.Wait()
	st := l.Stats()
	fmt.Fprintf(out, "unmounted: %d files opened, %d by passthrough; %d READ, %d WRITE, %d FSYNC requests came to this process\n", st.Opens, st.PassthroughOpens, st.Reads, st.Writes, st.Fsyncs)
	if statsPath != "" {
		b, err := json.Marshal(st)
		if err == nil {
			err = os.WriteFile(statsPath, b, 0o600)
		}
		if err != nil {
			return fmt.Errorf("write loopback stats: %w", err)
		}
	}
	return unmountErr
}

// floorRequests adds up the request counts of every floor process of a
// bench (the long-lived one and those started for Fresh workloads).
type floorRequests struct {
	mu  sync.Mutex
	sum fusefs.LoopbackStats
	n   int // processes that reported
}

func (f *floorRequests) add(st fusefs.LoopbackStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sum.Opens += st.Opens
	f.sum.PassthroughOpens += st.PassthroughOpens
	f.sum.Reads += st.Reads
	f.sum.Writes += st.Writes
	f.sum.Fsyncs += st.Fsyncs
	f.n++
}

// name is floorName, qualified by how much of the floor's file I/O the
// kernel served by passthrough: all of it (or no report: as predicted),
// none, or part.
func (f *floorRequests) name(predicted string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sum
	switch {
	case f.n == 0 || s.Opens == 0:
		return predicted
	case s.PassthroughOpens == s.Opens:
		return floorName
	case s.PassthroughOpens == 0:
		return floorName + " (no passthrough)"
	default:
		return fmt.Sprintf("%s (passthrough for %d of %d opens)", floorName, s.PassthroughOpens, s.Opens)
	}
}

// predictedFloorName is the floor's name before it has run: go-fuse gets
// passthrough where walfs mount would choose it (root, Linux >= 6.9).
func predictedFloorName() string {
	if mode, _ := chooseCapture(replicate.CaptureAuto, replicate.DurabilityAsync); mode == replicate.CapturePassthrough {
		return floorName
	}
	return floorName + " (no passthrough)"
}

// startFloorMount starts a bare go-fuse loopback of data at mnt in a child
// process (walfs bench --worker-loopback) and waits up to within for it to
// appear; stopping it adds its request counts to reqs.
func startFloorMount(name, data, mnt string, reqs *floorRequests, within time.Duration) (*benchMountPoint, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	statsPath := filepath.Join(filepath.Dir(mnt), "floor-stats.json")
	os.Remove(statsPath)
	args := []string{"bench", "--worker-loopback", data, "--worker-stats", statsPath, mnt}
	unmount := func(_ *benchMountPoint, p *os.Process) { p.Signal(syscall.SIGTERM) }
	exited := func() {
		if b, err := os.ReadFile(statsPath); err == nil {
			var st fusefs.LoopbackStats
			if json.Unmarshal(b, &st) == nil {
				reqs.add(st)
			}
		}
	}
	m, err := startMountChild("bare loopback (walfs bench --worker-loopback)", name, mnt, args, within, unmount, exited)
	if err != nil {
		return nil, err
	}
	m.fresh = func(dir string) (*benchMountPoint, error) {
		return startFloorMount(name, filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), reqs, within)
	}
	return m, nil
}
