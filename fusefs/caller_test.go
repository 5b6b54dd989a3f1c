package fusefs

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestParseGroups(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         []uint32
	}{
		{"several", "Name:\tx\nGroups:\t4 24 4100 \nNgid:\t0\n", []uint32{4, 24, 4100}},
		{"none", "Name:\tx\nGroups:\t\nNgid:\t0\n", nil},
		{"missing line", "Name:\tx\n", nil},
		{"garbage", "Groups:\t4 x\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseGroups([]byte(tc.status)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseGroups(f *testing.F) {
	f.Add([]byte("Groups:\t1 2 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseGroups(b) })
}

// A file made through asCaller belongs to the caller, takes a setgid
// directory's group, and the process's own credentials are back afterwards.
func TestAsCallerOwnership(t *testing.T) {
	id, err := processIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if !id.canSwitch {
		t.Skip("only root can take another user's credentials") // CI runs as root
	}
	dir := t.TempDir()
	sgid := filepath.Join(dir, "sgid")
	if err := os.Mkdir(sgid, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sgid, 0, 4100); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sgid, 0o777|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700
	os.Chmod(dir, 0o777)
	ctx := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: 4001, Gid: 4001}})
	for _, tc := range []struct {
		name             string
		path             string
		wantUID, wantGID uint32
	}{
		{"plain dir", filepath.Join(dir, "f"), 4001, 4001},
		{"setgid dir", filepath.Join(sgid, "f"), 4001, 4100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := id.asCaller(ctx, func() error {
				fd, err := syscall.Open(tc.path, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_EXCL, 0o640)
				if err == nil {
					syscall.Close(fd)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(tc.path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != tc.wantUID || st.Gid != tc.wantGID {
				t.Fatalf("owner %d:%d, want %d:%d", st.Uid, st.Gid, tc.wantUID, tc.wantGID)
			}
		})
	}
	// The caller may not create where only root may.
	os.Chmod(dir, 0o755)
	err = id.asCaller(ctx, func() error { return syscall.Mkdir(filepath.Join(dir, "refused"), 0o755) })
	if err != syscall.EACCES {
		t.Fatalf("mkdir as uid 4001 in a 0755 root dir: got %v, want EACCES", err)
	}
	// And this goroutine's thread still creates as root.
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
}
