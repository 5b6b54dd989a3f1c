package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The four accesses of "a mount that is safe to share a machine with": in
// a mount run by root, nobody may not read root's 0600 database, append to
// it, or create a file or a directory in root's 0755 directory. Without
// --allow-other the mount refuses other users outright (even stat of the
// mount point); with it, permissions decide: nobody may read a 0644 file
// and create files in a 01777 directory, owned by nobody on the data dir.
func TestPermOtherUserRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		allowOther bool
	}{
		{"default", false},
		{"allow-other", true},
	} {
		t.Run(tc.name, func(t *testing.T) { testPermOtherUserRefused(t, tc.allowOther) })
	}
}

func testPermOtherUserRefused(t *testing.T, allowOther bool) {
	requireEnv(t)
	base := t.TempDir()
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	openUp(t, base)
	var extra []string
	if allowOther {
		extra = []string{"--allow-other"}
	}
	m := startMountAt(t, nil, data, "file://"+filepath.Join(base, "replica"), filepath.Join(base, "mnt"), extra...)

	// Root sets the scene through the mount.
	db := filepath.Join(m.Mnt, "secret.db")
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table t(x)")
c.execute("insert into t values ('root only')")
c.close()
`, db)
	dbBytes := func() []byte {
		b, err := os.ReadFile(filepath.Join(data, "secret.db"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := dbBytes()
	for _, d := range []struct {
		path string
		mode os.FileMode
		dir  bool
	}{
		{"secret.db", 0o600, false},
		{"rootdir", 0o755, true},
		{"public", 0o644, false},
		{"tmp", 0o777 | os.ModeSticky, true},
	} {
		p := filepath.Join(m.Mnt, d.path)
		if d.dir {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if d.path != "secret.db" {
			if err := os.WriteFile(p, []byte("for everyone\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}

	nobody := startPermAgent(t, permUserNamed(t, "nobody"))
	root := startPermAgent(t, permUserNamed(t, "root"))
	at := func(p string) string { return filepath.Join(m.Mnt, p) }
	create := syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL
	for _, c := range []struct {
		what       string
		agent      *permAgent
		req        permRequest
		want       syscall.Errno // without --allow-other
		wantShared syscall.Errno // with it
	}{
		{"nobody reads the 0600 database", nobody, permRequest{Op: "read", Path: db}, syscall.EACCES, syscall.EACCES},
		{"nobody appends to it", nobody, permRequest{Op: "write", Path: db, Flags: syscall.O_WRONLY | syscall.O_APPEND, Data: "junk"}, syscall.EACCES, syscall.EACCES},
		{"nobody creates a file in root's 0755 dir", nobody, permRequest{Op: "open", Path: at("rootdir/f"), Flags: create, Mode: 0o644, Umask: 0o022}, syscall.EACCES, syscall.EACCES},
		{"nobody makes a dir in root's 0755 dir", nobody, permRequest{Op: "mkdir", Path: at("rootdir/d"), Mode: 0o755, Umask: 0o022}, syscall.EACCES, syscall.EACCES},
		{"nobody stats the mount point", nobody, permRequest{Op: "stat", Path: m.Mnt}, syscall.EACCES, 0},
		{"nobody reads a 0644 file", nobody, permRequest{Op: "read", Path: at("public")}, syscall.EACCES, 0},
		{"nobody creates a file in a 01777 dir", nobody, permRequest{Op: "open", Path: at("tmp/mine"), Flags: create, Mode: 0o644, Umask: 0o022}, syscall.EACCES, 0},
		{"root reads the database", root, permRequest{Op: "read", Path: db}, 0, 0},
		{"root opens it to append", root, permRequest{Op: "open", Path: db, Flags: syscall.O_WRONLY | syscall.O_APPEND}, 0, 0},
		{"root creates a file in its 0755 dir", root, permRequest{Op: "open", Path: at("rootdir/f"), Flags: create, Mode: 0o644, Umask: 0o022}, 0, 0},
		{"root makes a dir in its 0755 dir", root, permRequest{Op: "mkdir", Path: at("rootdir/d"), Mode: 0o755, Umask: 0o022}, 0, 0},
	} {
		want := c.want
		if allowOther {
			want = c.wantShared
		}
		rep, err := c.agent.do(c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if got := rep.Errno; got != want {
			t.Errorf("%s: got %s, want %s", c.what, errnoName(got), errnoName(want))
		}
	}
	if got := dbBytes(); !bytes.Equal(got, before) {
		t.Errorf("the database changed: %d bytes before, %d after", len(before), len(got))
	}
	if allowOther {
		// Created under nobody's credentials, not the server's.
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(data, "tmp/mine"), &st); err != nil {
			t.Fatalf("nobody's file on the data dir: %v", err)
		}
		if got, want := [2]uint32{st.Uid, st.Gid}, [2]uint32{uidNobody, gidNobody}; got != want {
			t.Errorf("nobody's file is owned by %d:%d on the data dir, want %d:%d", got[0], got[1], want[0], want[1])
		}
	}
	m.Unmount()
}
