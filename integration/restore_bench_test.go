package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
)

// BenchmarkRestoreVsLitestream restores the same replica in local MinIO —
// a snapshot of a real SQLite database plus a day of compacted changes (see
// buildDayReplica) — with `walfs restore` and `litestream restore` v0.5.18,
// both the real binaries, one after the other in the same run, and reports
// wall time, CPU time and peak RSS of each, and the ratio. Every restored
// file must be byte-identical to the source database.
//
// It runs only when asked, and takes minutes at the default size:
//
//	go test -run '^$' -bench RestoreVsLitestream -benchtime 1x ./integration/
//
// WALFS_BENCH_RESTORE_MB sets the database size (default 1024);
// -benchtime Nx runs each restore N times and reports the fastest.
// WALFS_BENCH_RESTORE_HOLD=FILE writes the replica's URL and credentials
// to FILE and waits until FILE is removed before timing, for profiling by
// hand.
func BenchmarkRestoreVsLitestream(b *testing.B) {
	mb := 1024
	if s := os.Getenv("WALFS_BENCH_RESTORE_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("WALFS_BENCH_RESTORE_MB=%q: want a size in MiB", s)
		}
		mb = n
	}
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("python3 is needed to build the database")
	}
	lsBin := testserver.Tool(b, "litestream")
	srv := testserver.StartMinIO(b)
	const path = "bench/app.db"
	st, err := s3backend.New(context.Background(), s3backend.Config{
		URL: s3URL(srv, "bench"), AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	rep := buildDayReplica(b, st, "app.db", mb)
	url := s3URL(srv, path)
	outDir := b.TempDir()

	type variant struct {
		name string
		cmd  func(out string) *exec.Cmd
	}
	walfs := func(extra ...string) func(string) *exec.Cmd {
		return func(out string) *exec.Cmd {
			cmd := exec.Command(walfsBin, append(append([]string{"restore", "--log-level", "warn", "-o", out}, extra...), url)...)
			cmd.Env = append(os.Environ(), s3Env(srv)...)
			return cmd
		}
	}
	litestream := func(extra ...string) func(string) *exec.Cmd {
		return func(out string) *exec.Cmd {
			cmd := exec.Command(lsBin, append(append([]string{"restore", "-o", out}, extra...), url)...)
			cmd.Env = litestreamEnv(srv)
			return cmd
		}
	}
	variants := []variant{
		{"litestream restore (default: no integrity check)", litestream()},
		{"walfs restore (default: checksums + quick_check)", walfs()},
		{"walfs restore --integrity-check none (checksums only)", walfs("--integrity-check", "none")},
		{"litestream restore -integrity-check quick", litestream("-integrity-check", "quick")},
	}
	if hold := os.Getenv("WALFS_BENCH_RESTORE_HOLD"); hold != "" {
		holdReplica(b, hold, srv, url)
	}
	results := make([][]benchRun, len(variants))
	runs := 0
	for b.Loop() {
		runs++
		for i, v := range variants {
			out := filepath.Join(outDir, fmt.Sprintf("restored-%d.db", i))
			r := runBenchCmd(b, v.cmd(out))
			if sum := fileSHA256(b, out); sum != rep.SHA256 {
				b.Fatalf("%s: restored database differs from the source (sha256 %x, want %x)", v.name, sum, rep.SHA256)
			}
			os.Remove(out)
			results[i] = append(results[i], r)
		}
	}

	best := make([]benchRun, len(variants))
	for i := range variants {
		best[i] = fastest(results[i])
	}
	var tbl bytes.Buffer
	fmt.Fprintf(&tbl, "restore of a %s database from MinIO: %d objects (levels 9/3/2/1/0: %d/%d/%d/%d/%d), %s stored, TXID %d; best of %d\n",
		mib(rep.Size), sumInts(rep.Objects[:]), rep.Objects[9], rep.Objects[3], rep.Objects[2], rep.Objects[1], rep.Objects[0],
		mib(rep.Bytes), rep.TXID, runs)
	tw := tabwriter.NewWriter(&tbl, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tWALL\tCPU\tPEAK RSS")
	for i, v := range variants {
		r := best[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.name, r.wall.Round(10*time.Millisecond), r.cpu.Round(10*time.Millisecond), mib(r.maxRSS))
	}
	tw.Flush()
	ratio := func(w, l benchRun) float64 { return w.wall.Seconds() / l.wall.Seconds() }
	fmt.Fprintf(&tbl, "walfs/litestream wall time: %.2f with each tool's defaults, %.2f without integrity checks, %.2f both with quick_check\n",
		ratio(best[1], best[0]), ratio(best[2], best[0]), ratio(best[1], best[3]))
	// Printed, not logged: go test cuts a benchmark's log to a few lines.
	fmt.Print(tbl.String())

	b.ReportMetric(best[0].wall.Seconds(), "litestream-s")
	b.ReportMetric(best[1].wall.Seconds(), "walfs-s")
	b.ReportMetric(ratio(best[1], best[0]), "walfs/litestream")
	b.ReportMetric(float64(best[0].maxRSS)/(1<<20), "litestream-MiB-RSS")
	b.ReportMetric(float64(best[1].maxRSS)/(1<<20), "walfs-MiB-RSS")
	b.ReportMetric(0, "ns/op") // the per-tool metrics say it; the loop's total mixes four restores
}

// benchRun is one timed run of a restore binary.
type benchRun struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

// runBenchCmd runs cmd and measures it. The peak RSS comes from GNU time
// where installed: wait4's rusage of a child of this process would report
// at least this process's own RSS, because Linux carries the high-water
// mark across the vfork and exec that start it.
func runBenchCmd(b *testing.B, cmd *exec.Cmd) benchRun {
	b.Helper()
	timeFile := filepath.Join(b.TempDir(), "time")
	gnuTime, err := exec.LookPath("/usr/bin/time")
	if err == nil {
		cmd.Args = append([]string{gnuTime, "-f", "%M", "-o", timeFile}, cmd.Args...)
		cmd.Path = gnuTime
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	r := benchRun{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if gnuTime != "" {
		kib, err := os.ReadFile(timeFile)
		n, perr := strconv.ParseInt(strings.TrimSpace(string(kib)), 10, 64)
		if err != nil || perr != nil {
			b.Fatalf("read peak RSS from %s: %v %v (%q)", gnuTime, err, perr, kib)
		}
		r.maxRSS = n * 1024
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024 // KiB on Linux; an upper bound, see above
	}
	return r
}

// holdReplica writes how to reach the replica to file and waits until the
// file is removed.
func holdReplica(b *testing.B, file string, srv *testserver.Server, url string) {
	b.Helper()
	env := fmt.Sprintf("export WALFS_ACCESS_KEY_ID=%s WALFS_SECRET_ACCESS_KEY=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\nURL='%s'\n",
		srv.AccessKey, srv.SecretKey, srv.AccessKey, srv.SecretKey, url)
	if err := os.WriteFile(file, []byte(env), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("replica held: source %s; remove %s to continue", file, file)
	for {
		if _, err := os.Stat(file); os.IsNotExist(err) {
			return
		}
		time.Sleep(time.Second) // waiting for a person
	}
}

func fastest(runs []benchRun) benchRun {
	best := runs[0]
	for _, r := range runs[1:] {
		if r.wall < best.wall {
			best = r
		}
	}
	return best
}

func fileSHA256(tb testing.TB, path string) [32]byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
