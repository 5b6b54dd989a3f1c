package fusefs

import (
	"os"
	"path/filepath"
	"testing"
)

// The kernel may keep a database's page cache across opens only while
// nothing can have written the backing file behind it.
func TestIOModeKeepCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	hdr := make([]byte, 4096)
	copy(hdr, "SQLite format 3\x00")
	hdr[16], hdr[17] = 0x10, 0x00 // 4096-byte pages
	hdr[18], hdr[19] = 1, 1       // rollback journal
	if err := os.WriteFile(path, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	var m ioMode
	type handle struct {
		f  *os.File
		pt bool
	}
	open := func(allowed bool) (h handle, keep bool) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.f = f
		h.pt, keep = m.open(f, func() bool { return allowed && kernelServes(path) })
		return h, keep
	}
	release := func(h handle) {
		t.Helper()
		var left fileStamp
		if !h.pt {
			left = stampOf(h.f)
		}
		m.release(h.pt, left)
		h.f.Close()
	}
	// Writes that change the size, so that the test does not depend on the
	// file system's timestamp granularity.
	writeBehind := func(b []byte) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}

	a, keep := open(false)
	if keep {
		t.Error("first open keeps a cache nobody vouched for")
	}
	b, keep := open(false)
	if !keep {
		t.Error("open beside an open page-cached handle drops the cache")
	}
	release(a)
	release(b)
	c, keep := open(false)
	if !keep {
		t.Error("reopen of an unchanged file drops the cache")
	}
	release(c)

	writeBehind(make([]byte, 4096))
	d, keep := open(false)
	if keep {
		t.Error("reopen after a write outside the mount keeps the cache")
	}
	release(d)

	hdr[18], hdr[19] = 2, 2 // WAL mode: handles may be passed through
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(hdr[:20], 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e, _ := open(false)
	release(e)
	p, _ := open(true)
	if !p.pt {
		t.Fatal("a WAL database was not passed through")
	}
	release(p)
	g, keep := open(false)
	if keep {
		t.Error("page-cached open after a passthrough handle keeps the cache")
	}
	if g.pt {
		t.Error("passthrough not allowed, yet chosen")
	}
	release(g)
}
