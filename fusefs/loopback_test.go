package fusefs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bare loopback serves the data dir: a file written through it lands on
// the disk byte for byte and reads back; with passthrough (where the kernel
// offers it) no READ or WRITE reaches the process, without it they all do;
// unmounting leaves no mount behind. The I/O runs in child processes: a
// process must not do I/O on a mount it serves.
func TestLoopback(t *testing.T) {
	requireMount(t)
	for _, passthrough := range []bool{true, false} {
		t.Run(map[bool]string{true: "passthrough", false: "userspace"}[passthrough], func(t *testing.T) {
			dir := t.TempDir()
			data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
			if err := os.Mkdir(data, 0o755); err != nil {
				t.Fatal(err)
			}
			l, err := NewLoopback(LoopbackOptions{DataDir: data, MountPoint: mnt, Passthrough: passthrough})
			if err != nil {
				t.Fatal(err)
			}
			mounted := true
			t.Cleanup(func() {
				if mounted {
					l.Unmount(true)
					l.Wait()
				}
			})
			want := strings.Repeat("walfs floor\n", 1000)
			f := filepath.Join(mnt, "sub", "f")
			child(t, want, "sh", "-c", `mkdir "$1" && cat > "$2"`, "sh", filepath.Dir(f), f)
			if got := child(t, "", "cat", f); got != want {
				t.Errorf("read through the mount: %d bytes, want %d", len(got), len(want))
			}
			if got, err := os.ReadFile(filepath.Join(data, "sub", "f")); err != nil || string(got) != want {
				t.Errorf("on the disk: %d bytes, %v; want %d bytes", len(got), err, len(want))
			}

			st := l.Stats()
			if st.Opens < 2 {
				t.Errorf("stats %+v: want at least 2 opens (create, open)", st)
			}
			switch {
			case !passthrough:
				if st.PassthroughOpens != 0 || st.Reads == 0 || st.Writes == 0 {
					t.Errorf("stats %+v: want no passthrough opens, reads and writes in userspace", st)
				}
			case l.KernelOffersPassthrough():
				if st.PassthroughOpens != st.Opens || st.Reads != 0 || st.Writes != 0 {
					t.Errorf("stats %+v: want every open by passthrough and no read or write in userspace", st)
				}
			default:
				t.Logf("the kernel offers no passthrough; stats %+v", st)
			}

			if err := l.Unmount(false); err != nil {
				t.Fatal(err)
			}
			l.Wait()
			mounted = false
			b, err := os.ReadFile("/proc/mounts")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[1] == mnt {
					t.Errorf("still mounted after unmount: %s", line)
				}
			}
		})
	}
}

// child runs a command with stdin as its input and returns its output.
func child(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return string(out)
}
