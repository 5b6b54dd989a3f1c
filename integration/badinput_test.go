package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSecret stands in for a real secret key in every bad-input case: in the
// environment, in config files and in URLs. It must never be printed.
const fakeSecret = "FAKEsecret-do-not-print-7c1e9d"

// badCase is one wrong thing a user can do. Whatever it is, walfs must exit
// non-zero within seconds with one line that says what is wrong and how to
// fix it, print no stack trace and no secret, and leave no mount behind.
type badCase struct {
	name string
	// prep returns walfs's arguments; dir is an empty directory of the case's own.
	prep func(t *testing.T, dir string) []string
	// want are substrings of the error line: what is wrong, and the fix.
	want []string
	// as runs walfs in a changed world: asNobody (an unprivileged user) or
	// noDevFuse (a mount namespace without /dev/fuse).
	as string
	// foreign is the prefix of a line another program prints on its own
	// stderr (fusermount3), allowed besides walfs's line.
	foreign string
	// env replaces the base environment's entries of the same name.
	env []string
	// noNewFiles asserts the case's directory holds afterwards exactly what
	// prep put there (restore must leave nothing at -o).
	noNewFiles bool
	// after runs extra checks once walfs has exited.
	after func(t *testing.T, dir string)
}

const (
	asNobody  = "nobody"
	noDevFuse = "no-dev-fuse"
)

// badFixture is what the cases point at: a replica holding app.db, a live
// walfs mount, and a tmpfs mount that is not walfs.
type badFixture struct {
	root    string
	replica string // file:// URL of a replica holding app.db
	live    *mountProc
	tmpfs   string
}

func newBadFixture(t *testing.T) *badFixture {
	t.Helper()
	requireEnv(t)
	fx := &badFixture{root: t.TempDir()}
	replicaDir := filepath.Join(fx.root, "replica")
	fx.replica = "file://" + replicaDir
	m := startMount(t, filepath.Join(fx.root, "fixture-data"), fx.replica)
	py(t, `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("create table t(x)")
for i in range(5):
    c.execute("insert into t values (?)", (i,))
`, filepath.Join(m.Mnt, "app.db"))
	m.Unmount()
	fx.live = startMount(t, filepath.Join(fx.root, "live-data"), "file://"+filepath.Join(fx.root, "live-replica"))
	fx.tmpfs = filepath.Join(fx.root, "tmpfs")
	if err := os.Mkdir(fx.tmpfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", fx.tmpfs, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(fx.tmpfs, syscall.MNT_DETACH) })
	return fx
}

func TestBadInput(t *testing.T) {
	fx := newBadFixture(t)
	// write puts a file into dir and returns its path.
	write := func(t *testing.T, dir, name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// mountWith runs walfs mount with a config file holding yaml.
	mountWith := func(yaml string) func(t *testing.T, dir string) []string {
		return func(t *testing.T, dir string) []string {
			yaml := strings.NewReplacer("{dir}", dir, "{secret}", fakeSecret).Replace(yaml)
			return []string{"mount", "--config", write(t, dir, "walfs.yml", yaml), filepath.Join(dir, "mnt")}
		}
	}
	const cfgHead = "data-dir: {dir}/data\nsecret-access-key: {secret}\naccess-key-id: AKIAFAKE\n"
	// mountReplica runs walfs mount with --replica url.
	mountReplica := func(url string) func(t *testing.T, dir string) []string {
		return func(t *testing.T, dir string) []string {
			return []string{"mount", "--data-dir", filepath.Join(dir, "data"), "--replica", url, filepath.Join(dir, "mnt")}
		}
	}
	args := func(a ...string) func(t *testing.T, dir string) []string {
		return func(t *testing.T, dir string) []string {
			out := make([]string, len(a))
			for i, s := range a {
				out[i] = strings.ReplaceAll(s, "{dir}", dir)
			}
			return out
		}
	}
	appDB := fx.replica + "/app.db"
	const refused = "?endpoint=http://127.0.0.1:1" // nothing listens on port 1

	cases := []badCase{
		// Replica URLs.
		{name: "s3 url without bucket", prep: mountReplica("s3:///app"), want: []string{"no bucket", "s3://bucket/path"}},
		{name: "unknown scheme", prep: mountReplica("ftp://host/app"), want: []string{`"ftp"`, "file:///", "s3://bucket/path"}},
		{name: "http url as replica", prep: mountReplica("http://127.0.0.1:9000/bucket"), want: []string{`"http"`, "endpoint="}},
		{name: "file url with two slashes", prep: mountReplica("file://relative/dir"), want: []string{"three slashes"}},
		{name: "relative replica path", prep: mountReplica("relative/dir"), want: []string{"not an absolute path"}},
		{name: "unknown url parameter", prep: mountReplica("s3://bucket/app?endpont=http://127.0.0.1:1"), want: []string{`"endpont"`, "endpoint"}},
		{name: "credentials in url", prep: mountReplica("s3://AKIAFAKE:" + fakeSecret + "@bucket/app"), want: []string{"credentials", "WALFS_ACCESS_KEY_ID"}},
		{name: "malformed url with credentials", prep: mountReplica("s3://AKIAFAKE:" + fakeSecret + "%zz@bucket/app"), want: []string{"escape", "s3://bucket/path"}},
		{name: "malformed endpoint escape", prep: mountReplica("s3://bucket/app?endpoint=%zz"), want: []string{"%zz", "endpoint"}},
		{name: "endpoint with credentials", prep: mountReplica("s3://bucket/app?endpoint=http://AKIAFAKE:" + fakeSecret + "@127.0.0.1:1"), want: []string{"endpoint"}},
		{name: "endpoint scheme", prep: mountReplica("s3://bucket/app?endpoint=ftp://127.0.0.1:1"), want: []string{`"ftp"`, "http://"}},
		{name: "endpoint refuses connections", prep: mountReplica("s3://bucket/app" + refused), want: []string{"connection refused", "127.0.0.1:1", "check"}},
		{name: "restore from endpoint refusing connections", prep: args("restore", "-o", "{dir}/out.db", "s3://bucket/app/app.db"+refused), want: []string{"connection refused", "127.0.0.1:1", "check"}, noNewFiles: true},
		{name: "ls of endpoint refusing connections", prep: args("ls", "s3://bucket/app"+refused), want: []string{"connection refused", "127.0.0.1:1", "check"}},
		{name: "file replica that cannot be created", prep: mountReplica("file:///proc/walfs-replica"), want: []string{"/proc/walfs-replica", "check the replica path"}},

		// Config files.
		{name: "missing config", prep: args("mount", "--config", "{dir}/nope.yml", "{dir}/mnt"), want: []string{"nope.yml", "no such file", "--config"}},
		{name: "unreadable config", as: asNobody, prep: func(t *testing.T, dir string) []string {
			p := write(t, dir, "walfs.yml", "data-dir: "+dir+"/data\n")
			if err := os.Chmod(p, 0); err != nil {
				t.Fatal(err)
			}
			return []string{"mount", "--config", p, filepath.Join(dir, "mnt")}
		}, want: []string{"walfs.yml", "permission denied", "mode"}},
		{name: "config is a directory", prep: args("mount", "--config", "{dir}", "{dir}/mnt"), want: []string{"is a directory", "YAML file"}},
		{name: "yaml syntax error", prep: mountWith(cfgHead + "replica:\n  url: file:///tmp/x\n   bad: [\n"), want: []string{"walfs.yml:6:", "invalid YAML", "indentation"}},
		{name: "unknown key", prep: mountWith(cfgHead + "sync-intervall: 1s\n"), want: []string{"walfs.yml:4:", `"sync-intervall"`, `did you mean "sync-interval"`}},
		{name: "unknown replica key", prep: mountWith(cfgHead + "replica:\n  url: s3://b/p\n  secret-acces-key: {secret}\n"), want: []string{"walfs.yml:6:", `did you mean "replica.secret-access-key"`}},
		{name: "part-size lots", prep: mountWith(cfgHead + "replica:\n  url: s3://b/p\n  part-size: lots\n"), want: []string{"walfs.yml:6:", "part-size", `"lots"`, "5MB"}},
		{name: "concurrency -1", prep: mountWith(cfgHead + "replica:\n  url: s3://b/p\n  concurrency: -1\n"), want: []string{"walfs.yml:6:", "concurrency", "from 1 to"}},
		{name: "sync-interval -5s in config", prep: mountWith(cfgHead + "sync-interval: -5s\n"), want: []string{"walfs.yml:4:", "sync-interval", "negative"}},
		{name: "durability sometimes in config", prep: mountWith(cfgHead + "durability: sometimes\n"), want: []string{"walfs.yml:4:", "durability", "async, sync"}},
		{name: "secret as a mapping", prep: mountWith(cfgHead + "replica:\n  url: s3://b/p\n  secret-access-key:\n    x: {secret}\n"), want: []string{"secret-access-key", "mapping"}},
		{name: "unset variable", prep: mountWith(cfgHead + "replica:\n  url: s3://b/p\n  access-key-id: ${WALFS_TEST_UNSET_VARIABLE}\n"), want: []string{"walfs.yml:6:", "WALFS_TEST_UNSET_VARIABLE", "not set"}},
		{name: "lease sometimes in config", prep: mountWith(cfgHead + "lease: sometimes\n"), want: []string{"walfs.yml:4:", "lease"}},
		{name: "capture sometimes in config", prep: mountWith(cfgHead + "capture: sometimes\n"), want: []string{"walfs.yml:4:", "capture", "auto, passthrough, userspace"}},
		{name: "durability sync with passthrough capture", prep: args("mount", "--data-dir", "{dir}/data", "--durability", "sync", "--capture", "passthrough", "{dir}/mnt"), want: []string{"--durability sync", "--capture userspace"}},

		// Flags.
		{name: "sync-interval -5s flag", prep: args("mount", "--data-dir", "{dir}/data", "--sync-interval", "-5s", "{dir}/mnt"), want: []string{"--sync-interval", "positive"}},
		{name: "sync-interval without unit", prep: args("mount", "--data-dir", "{dir}/data", "--sync-interval", "5", "{dir}/mnt"), want: []string{"sync-interval", "--help"}},
		{name: "durability sometimes flag", prep: args("mount", "--data-dir", "{dir}/data", "--durability", "sometimes", "{dir}/mnt"), want: []string{"--durability", "async or sync"}},
		{name: "unknown flag", prep: args("mount", "--data-dri", "{dir}/data", "{dir}/mnt"), want: []string{"data-dri", "walfs mount --help"}},
		{name: "no mount point", prep: args("mount", "--data-dir", "{dir}/data"), want: []string{"mount point", "MOUNTPOINT"}},
		{name: "poll-interval without follow", prep: args("mount", "--data-dir", "{dir}/data", "--poll-interval", "2s", "{dir}/mnt"), want: []string{"--poll-interval", "--follow"}},
		{name: "takeover-after in config without follow", prep: mountWith(cfgHead + "takeover-after: 1m\n"), want: []string{"--takeover-after", "--follow"}},
		{name: "lease-ttl too short", prep: args("mount", "--data-dir", "{dir}/data", "--lease-ttl", "1s", "{dir}/mnt"), want: []string{"--lease-ttl", "at least 6s"}},
		{name: "poll-interval too short", prep: args("mount", "--follow", "--data-dir", "{dir}/data", "--poll-interval", "1ms", "{dir}/mnt"), want: []string{"--poll-interval", "at least 10ms"}},
		{name: "follow a one-database url", prep: func(t *testing.T, dir string) []string {
			return []string{"mount", "--follow", "--data-dir", filepath.Join(dir, "data"), "--replica", appDB, filepath.Join(dir, "mnt")}
		}, want: []string{"names one database", "path above it"}},
		{name: "promote a primary", prep: func(t *testing.T, dir string) []string {
			return []string{"promote", fx.live.Mnt}
		}, want: []string{"promote", "walfs mount --follow"}},

		// Mount points and data dirs.
		{name: "mount point is a file", prep: func(t *testing.T, dir string) []string {
			return []string{"mount", "--data-dir", filepath.Join(dir, "data"), write(t, dir, "file", "x")}
		}, want: []string{"not a directory", "empty directory"}},
		{name: "mount point not empty", prep: func(t *testing.T, dir string) []string {
			os.Mkdir(filepath.Join(dir, "mnt"), 0o755)
			write(t, dir, "mnt/precious", "x")
			return []string{"mount", "--data-dir", filepath.Join(dir, "data"), filepath.Join(dir, "mnt")}
		}, want: []string{"not empty", "--data-dir"}},
		{name: "mount point is a tmpfs mount", prep: args("mount", "--data-dir", "{dir}/data", fx.tmpfs), want: []string{"already a mount", "unmount it first"}},
		{name: "mount point is a live walfs mount", prep: args("mount", "--data-dir", "{dir}/data", fx.live.Mnt), want: []string{"already a mount", "unmount it first"}},
		{name: "data dir served by a live walfs mount", prep: args("mount", "--data-dir", fx.live.DataDir, "{dir}/mnt"), want: []string{"already served by the walfs mount at " + fx.live.Mnt, "walfs unmount"}},
		{name: "data dir inside the mount point", prep: func(t *testing.T, dir string) []string {
			os.Mkdir(filepath.Join(dir, "mnt"), 0o755)
			return []string{"mount", "--data-dir", filepath.Join(dir, "mnt", "data"), filepath.Join(dir, "mnt")}
		}, want: []string{"inside mount point", "outside the mount"}, after: func(t *testing.T, dir string) {
			// Nothing may be created in the mount point: a retry with the
			// right data dir must find it still empty.
			if entries, _ := os.ReadDir(filepath.Join(dir, "mnt")); len(entries) > 0 {
				t.Errorf("mount point left non-empty: %v", entries)
			}
		}},
		{name: "mount point inside the data dir", prep: args("mount", "--data-dir", "{dir}/data", "{dir}/data/mnt"), want: []string{"inside data dir", "outside the data dir"}},
		{name: "data dir is a file", prep: func(t *testing.T, dir string) []string {
			return []string{"mount", "--data-dir", write(t, dir, "file", "x"), filepath.Join(dir, "mnt")}
		}, want: []string{"data dir", "not a directory", "give --data-dir"}},
		{name: "no /dev/fuse", as: noDevFuse, prep: args("mount", "--data-dir", "{dir}/data", "{dir}/mnt"), want: []string{"/dev/fuse is missing", "--device /dev/fuse"}},
		{name: "no permission on /dev/fuse", as: asNobody, foreign: "/usr/bin/fusermount3: ", prep: args("mount", "--data-dir", "{dir}/data", "{dir}/mnt"), want: []string{"/dev/fuse", "you may use it"}},

		// Restore.
		{name: "restore over an existing file", prep: func(t *testing.T, dir string) []string {
			return []string{"restore", "-o", write(t, dir, "existing.db", "precious"), appDB}
		}, want: []string{"exists", "--force"}, noNewFiles: true, after: func(t *testing.T, dir string) {
			if b, _ := os.ReadFile(filepath.Join(dir, "existing.db")); string(b) != "precious" {
				t.Errorf("existing output changed to %q", b)
			}
		}},
		{name: "timestamp not RFC 3339", prep: args("restore", "-o", "{dir}/out.db", "--timestamp", "yesterday", appDB), want: []string{`"yesterday"`, "RFC 3339", "2025-03-01T12:00:00Z"}, noNewFiles: true},
		{name: "timestamp without time", prep: args("restore", "-o", "{dir}/out.db", "--timestamp", "2025-03-01", appDB), want: []string{"RFC 3339", "2025-03-01T12:00:00Z"}, noNewFiles: true},
		{name: "timestamp before the first snapshot", prep: args("restore", "-o", "{dir}/out.db", "--timestamp", "2000-01-01T00:00:00Z", appDB), want: []string{"no snapshot at or before", "later --txid or --timestamp"}, noNewFiles: true},
		{name: "txid and timestamp", prep: args("restore", "-o", "{dir}/out.db", "--txid", "2", "--timestamp", "2025-03-01T12:00:00Z", appDB), want: []string{"--txid or --timestamp, not both"}, noNewFiles: true},
		{name: "negative txid", prep: args("restore", "-o", "{dir}/out.db", "--txid", "-3", appDB), want: []string{"--txid", "positive"}, noNewFiles: true},
		{name: "txid zero", prep: args("restore", "-o", "{dir}/out.db", "--txid", "0", appDB), want: []string{"--txid", "start at 1"}, noNewFiles: true},
		{name: "txid not a number", prep: args("restore", "-o", "{dir}/out.db", "--txid", "abc", appDB), want: []string{"--txid", "decimal", "hex"}, noNewFiles: true},
		{name: "unknown txid", prep: args("restore", "-o", "{dir}/out.db", "--txid", "999999", appDB), want: []string{"999999", "latest TXID", "walfs ls"}, noNewFiles: true},
		{name: "restore from an empty replica path", prep: func(t *testing.T, dir string) []string {
			os.Mkdir(filepath.Join(dir, "empty"), 0o755)
			return []string{"restore", "-o", filepath.Join(dir, "out.db"), "file://" + filepath.Join(dir, "empty")}
		}, want: []string{"no backups", "check the replica URL"}, noNewFiles: true},
		{name: "restore from a missing replica path", prep: args("restore", "-o", "{dir}/out.db", "{dir}/nowhere/app.db"), want: []string{"no backups", "check the replica URL"}, noNewFiles: true},
		{name: "restore into a missing directory", prep: args("restore", "-o", "{dir}/nodir/out.db", appDB), want: []string{"nodir", "output's directory"}, noNewFiles: true},

		// Unmount.
		{name: "unmount a plain directory", prep: args("unmount", "{dir}"), want: []string{"not a mount point", "walfs mount was started on"}},
		{name: "unmount a missing path", prep: args("unmount", "{dir}/nowhere"), want: []string{"not a mount point", "walfs mount was started on"}},
		{name: "unmount a tmpfs mount", prep: args("unmount", fx.tmpfs), want: []string{"tmpfs", "not a walfs mount", "walfs mount was started on"}, after: func(t *testing.T, _ string) {
			if !isMounted(fx.tmpfs) {
				t.Error("walfs unmount removed a tmpfs mount")
			}
		}},
		{name: "unmount the data dir of a live mount", prep: args("unmount", fx.live.DataDir), want: []string{"not a mount point", "walfs mount was started on"}},
		{name: "unmount without argument", prep: args("unmount"), want: []string{"mount point", "--help"}},
		{name: "bench capture sometimes", prep: args("bench", "--dir", "{dir}", "--capture", "sometimes"), want: []string{"--capture", "auto, passthrough or userspace"}},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runBadCase(t, fx, c) })
	}
	// The live mount survived every case aimed at it and its data dir.
	fx.live.Sync()
	fx.live.Unmount()
}

// logLine matches walfs's own log records (slog text format); they may
// accompany the error line. The error itself is one line starting "walfs: ".
var logLine = regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN) `)

func runBadCase(t *testing.T, fx *badFixture, c badCase) {
	dir := filepath.Join(fx.root, "case-"+strings.NewReplacer(" ", "-", "/", "-").Replace(c.name))
	if c.as == asNobody {
		dir = nobodyDir(t)
	} else if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := c.prep(t, dir)
	before := listDir(dir)
	mountsBefore := append(mountsUnder(fx.root), mountsUnder(dir)...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := badCommand(ctx, t, c.as, dir, argv)
	cmd.Env = badEnv(c.env)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		// A case that mounted by mistake must not leave its mount behind.
		for _, m := range mountsUnder(dir) {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
		t.Fatalf("walfs %s did not exit within 30s\n%s", strings.Join(argv, " "), out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("walfs %s: want a non-zero exit, got %v\n%s", strings.Join(argv, " "), err, out)
	}
	text := string(out)
	if strings.Contains(text, fakeSecret) {
		t.Errorf("output echoes the secret:\n%s", text)
	}
	if strings.Contains(text, "goroutine ") || strings.Contains(text, "panic:") {
		t.Errorf("output has a stack trace:\n%s", text)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if logLine.MatchString(line) || (c.foreign != "" && strings.HasPrefix(line, c.foreign)) {
			continue
		}
		msgs = append(msgs, line)
	}
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "walfs: ") {
		t.Errorf("want exactly one line starting \"walfs: \" (besides log records), got %d:\n%s", len(msgs), text)
	} else {
		for _, w := range c.want {
			if !strings.Contains(msgs[0], w) {
				t.Errorf("error line lacks %q:\n%s", w, msgs[0])
			}
		}
	}
	if after := append(mountsUnder(fx.root), mountsUnder(dir)...); strings.Join(after, "\n") != strings.Join(mountsBefore, "\n") {
		t.Errorf("mounts changed: before %v, after %v", mountsBefore, after)
	}
	if c.noNewFiles {
		if got := listDir(dir); strings.Join(got, " ") != strings.Join(before, " ") {
			t.Errorf("left files behind: before %v, after %v", before, got)
		}
	}
	if c.after != nil {
		c.after(t, dir)
	}
	if t.Failed() {
		t.Logf("exit %d, output:\n%s", ee.ExitCode(), text)
	} else {
		t.Logf("exit %d: %s", ee.ExitCode(), msgs[0])
	}
}

// badCommand runs walfs with argv, as root in this world or in a changed one.
func badCommand(ctx context.Context, t *testing.T, as, dir string, argv []string) *exec.Cmd {
	switch as {
	case asNobody:
		// The test binary lives in a directory only root may enter.
		cmd := exec.CommandContext(ctx, nobodyBinary(t), argv...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd
	case noDevFuse:
		// A private mount namespace where /dev is an empty tmpfs: the
		// machine without the fuse module, or a container without --device.
		script := `mount -t tmpfs none /dev && exec "$0" "$@"`
		return exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, walfsBin}, argv...)...)
	}
	return exec.CommandContext(ctx, walfsBin, argv...)
}

// nobodyDir is an empty directory that belongs to nobody, in a place
// nobody can reach (t.TempDir's parents are root's alone).
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "walfs-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nobodyBinary copies the walfs binary where any user may run it.
func nobodyBinary(t *testing.T) string {
	t.Helper()
	dir := nobodyDir(t)
	src, err := os.Open(walfsBin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "walfs")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// badEnv is the environment of every case: the fake secret as the S3
// credentials, no real ones, and overrides.
func badEnv(overrides []string) []string {
	drop := map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
		"WALFS_ACCESS_KEY_ID": true, "WALFS_SECRET_ACCESS_KEY": true, "WALFS_CONFIG": true, "WALFS_REPLICA_URL": true, "WALFS_DATA_DIR": true}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	env = append(env, "WALFS_ACCESS_KEY_ID=AKIAFAKE", "WALFS_SECRET_ACCESS_KEY="+fakeSecret)
	return append(env, overrides...)
}

// mountsUnder lists the mount points below root, sorted.
func mountsUnder(root string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			out = append(out, f[4])
		}
	}
	sort.Strings(out)
	return out
}

// listDir lists the names under dir, recursively, sorted.
func listDir(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
