package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "rebuild a database from its replica, at the latest or any earlier point",
		ArgsUsage: "REPLICA_URL_OF_DB",
		Description: "Downloads the newest snapshot at or before the target and the fewest files that carry it\n" +
			"forward, applies them in order, verifies every file's CRC and the database checksum, runs\n" +
			"SQLite's quick_check, and only then moves the result into place. An interrupted or failed\n" +
			"restore leaves nothing behind. REPLICA_URL_OF_DB names one database inside a replica (see\n" +
			"`walfs ls`). Credentials come from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY or AWS_*.\n\n" +
			"Examples:\n" +
			"  walfs restore -o app.db 's3://bucket/app/app.db?endpoint=http://127.0.0.1:9000'\n" +
			"  walfs restore --timestamp 2025-03-01T12:00:00Z -o before.db /backups/replica/app.db\n" +
			"  walfs restore --if-db-not-exists --if-replica-exists -o /data/app.db s3://bucket/app/app.db",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the database to this `PATH` (default: the URL's last path element, in the current directory)"},
			&cli.StringFlag{Name: "txid", Usage: "restore exactly to this transaction `ID`: decimal, 0x-prefixed hex, or the 16 hex digits of an object name (default: latest)"},
			&cli.StringFlag{Name: "timestamp", Usage: "restore to the newest point committed at or before this RFC 3339 `TIME`, e.g. 2025-03-01T12:00:00Z"},
			&cli.BoolFlag{Name: "if-db-not-exists", Usage: "do nothing and exit 0 if the output already exists (for boot scripts)"},
			&cli.BoolFlag{Name: "if-replica-exists", Usage: "do nothing and exit 0 if the replica holds no backups of the database (for first boots)"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing output, removing its -wal, -shm and -journal files"},
			&cli.StringFlag{Name: "integrity-check", Value: restore.IntegrityQuick, Usage: "SQLite `CHECK` to run on the rebuilt database: none, quick (PRAGMA quick_check) or full (PRAGMA integrity_check, slower)"},
			&cli.IntFlag{Name: "parallelism", Value: restore.DefaultParallelism, Usage: "download up to `N` objects at once"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan (objects, levels, TXID ranges, sizes) and the point it lands on; download nothing"},
			&cli.BoolFlag{Name: "json", Usage: "print a machine-readable summary (or plan, with --dry-run) to stdout"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"WALFS_LOG_LEVEL"}, Usage: "`LEVEL` of the logs written to stderr: debug, info, warn or error"},
		},
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("restore needs exactly one argument, the replica URL of a database (see walfs restore --help)")
	}
	rawURL := replicaArg(c.Args().First())
	target, err := parseTarget(c.String("txid"), c.String("timestamp"))
	if err != nil {
		return err
	}
	check := c.String("integrity-check")
	if check != restore.IntegrityNone && check != restore.IntegrityQuick && check != restore.IntegrityFull {
		return usagef("--integrity-check must be none, quick or full, got %q", check)
	}
	if c.Int("parallelism") < 1 {
		return usagef("--parallelism must be at least 1, got %d", c.Int("parallelism"))
	}
	if _, err := parseLevel(c.String("log-level")); err != nil {
		return err
	}
	out := c.String("output")
	if out == "" {
		if out, err = defaultOutput(rawURL); err != nil {
			return err
		}
	}
	prog := newProgressPrinter(c.App.ErrWriter)
	log := newLogger(prog, c.String("log-level"), "text")
	prog.log = log

	if c.Bool("if-db-not-exists") && !c.Bool("dry-run") {
		if _, err := os.Lstat(out); err == nil {
			log.Info("output exists; nothing to do (--if-db-not-exists)", "output", out)
			return nil
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := s3backend.New(ctx, s3backend.Config{URL: rawURL}, log)
	if err != nil {
		return err
	}
	skipNoBackups := func(err error) error {
		if c.Bool("if-replica-exists") && errors.Is(err, restore.ErrNoBackups) {
			log.Info("replica holds no backups; nothing to do (--if-replica-exists)", "replica", st.String())
			return nil
		}
		return err
	}

	if c.Bool("dry-run") {
		plan, err := restore.MakePlan(ctx, st, "", target)
		if err != nil {
			return skipNoBackups(err)
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, restoreSummary(st, plan, out, nil, ""))
		}
		return printPlan(c.App.Writer, st, plan)
	}

	res, err := restore.Restore(ctx, st, "", out, restore.Options{
		Target:         target,
		IntegrityCheck: check,
		Force:          c.Bool("force"),
		Parallelism:    c.Int("parallelism"),
		Logger:         log,
		Progress:       prog.update,
	})
	prog.finish()
	if err != nil {
		return skipNoBackups(err)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, restoreSummary(st, res.Plan, out, res, check))
	}
	verified := "not tracked by the replica"
	if res.Verified {
		verified = "verified"
	}
	fmt.Fprintf(c.App.Writer, "restored %s at TXID %d (committed %s): %d files, %s in %s; checksum %016x %s; integrity check: %s\n",
		out, res.Plan.TXID, fmtWhen(res.Plan.Timestamp), len(res.Plan.Files), humanBytes(res.Plan.Bytes),
		res.Duration.Round(time.Millisecond), res.Checksum, verified, check)
	return nil
}

// replicaArg turns a relative directory into an absolute one, since file
// replicas need absolute paths; URLs pass through.
func replicaArg(raw string) string {
	if strings.Contains(raw, "://") || filepath.IsAbs(raw) {
		return raw
	}
	if abs, err := filepath.Abs(raw); err == nil {
		return abs
	}
	return raw
}

// parseTarget reads --txid and --timestamp; at most one may be given.
func parseTarget(txid, ts string) (restore.Target, error) {
	var t restore.Target
	if txid != "" && ts != "" {
		return t, usagef("give --txid or --timestamp, not both")
	}
	if txid != "" {
		n, err := parseTXID(txid)
		if err != nil {
			return t, usagef("--txid %q: %v", txid, err)
		}
		t.TXID = n
	}
	if ts != "" {
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return t, usagef("--timestamp %q is not an RFC 3339 time (like 2025-03-01T12:00:00Z or 2025-03-01T13:00:00+01:00)", ts)
		}
		t.Timestamp = at
	}
	return t, nil
}

// parseTXID accepts decimal, 0x-prefixed hex, or 16 hex digits as in object names.
func parseTXID(s string) (uint64, error) {
	var n uint64
	var err error
	switch {
	case strings.HasPrefix(s, "-"):
		return 0, errors.New("must be a positive transaction ID")
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		n, err = strconv.ParseUint(s[2:], 16, 64)
	case len(s) == 16:
		n, err = strconv.ParseUint(s, 16, 64)
	default:
		n, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return 0, errors.New("not a transaction ID (decimal, 0x-prefixed hex, or 16 hex digits)")
	}
	if n == 0 {
		return 0, errors.New("transaction IDs start at 1")
	}
	return n, nil
}

// defaultOutput is the URL's last path element, in the current directory.
func defaultOutput(rawURL string) (string, error) {
	p := rawURL
	if strings.Contains(rawURL, "://") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return "", usagef("cannot parse the replica URL %q: %v", rawURL, err)
		}
		p = u.Path
	}
	name := path.Base(strings.TrimRight(filepath.ToSlash(p), "/"))
	if name == "" || name == "." || name == "/" {
		return "", usagef("cannot name the output after the replica URL %q; give one with -o", rawURL)
	}
	return name, nil
}

// progressPrinter shows download progress: one updating line on a terminal,
// a log line every few seconds otherwise. It is also the log writer, so a
// log line never lands on the end of a progress line.
type progressPrinter struct {
	w        io.Writer
	tty      bool
	log      *slog.Logger
	start    time.Time
	last     time.Time
	interval time.Duration

	mu    sync.Mutex // guards drawn and writes to w
	drawn bool       // a progress line is on screen
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w, start: time.Now(), interval: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.interval = true, 100*time.Millisecond
		}
	}
	return p
}

// Write passes log output through, clearing a progress line first.
func (p *progressPrinter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	return p.w.Write(b)
}

func (p *progressPrinter) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// update is restore.Options.Progress; Restore never calls it concurrently.
func (p *progressPrinter) update(pr restore.Progress) {
	done := pr.FilesDone == pr.Files
	now := time.Now()
	if now.Sub(p.last) < p.interval && !done {
		return
	}
	p.last = now
	rate := float64(pr.BytesDone) / max(now.Sub(p.start).Seconds(), 0.001)
	eta := "-"
	if rate > 0 && !done {
		eta = (time.Duration(float64(pr.Bytes-pr.BytesDone)/rate) * time.Second).Round(time.Second).String()
	}
	if !p.tty {
		p.log.Info("download progress", "bytes", pr.BytesDone, "total_bytes", pr.Bytes,
			"files", pr.FilesDone, "total_files", pr.Files, "rate", humanBytes(int64(rate))+"/s", "eta", eta)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	if done {
		fmt.Fprintf(p.w, "downloaded %s in %d files (%s/s); verifying\n", humanBytes(pr.BytesDone), pr.Files, humanBytes(int64(rate)))
		return
	}
	fmt.Fprintf(p.w, "downloading %s / %s  %d/%d files  %s/s  ETA %s",
		humanBytes(pr.BytesDone), humanBytes(pr.Bytes), pr.FilesDone, pr.Files, humanBytes(int64(rate)), eta)
	p.drawn = true
}

// finish clears the progress line.
func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// printPlan writes a dry-run plan as a table.
func printPlan(w io.Writer, st s3backend.Store, plan *restore.Plan) error {
	fmt.Fprintf(w, "plan for %s: lands on TXID %d (committed %s); database %s (page size %d)\n",
		st, plan.TXID, fmtWhen(plan.Timestamp), humanBytes(plan.DBSize), plan.PageSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tTXIDS\tBYTES\tCOMMITTED\tKEY")
	for _, f := range plan.Files {
		fmt.Fprintf(tw, "%d\t%d-%d\t%s\t%s\t%s\n", f.Level, f.MinTXID, f.MaxTXID, humanBytes(f.Size), fmtWhen(f.CreatedAt), s3backend.Key(f))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "total: %d files, %s to download\n", len(plan.Files), humanBytes(plan.Bytes))
	return err
}

// restoreJSON is the --json output of restore (and of --dry-run).
type restoreJSON struct {
	Replica         string       `json:"replica"`
	Output          string       `json:"output"`
	DryRun          bool         `json:"dry_run"`
	TXID            uint64       `json:"txid"`
	Timestamp       time.Time    `json:"timestamp"`
	PageSize        uint32       `json:"page_size"`
	DBSize          int64        `json:"db_size"`
	Bytes           int64        `json:"bytes"`
	Files           []objectJSON `json:"files"`
	Checksum        string       `json:"checksum,omitempty"`
	Verified        bool         `json:"verified"`
	IntegrityCheck  string       `json:"integrity_check,omitempty"`
	DurationSeconds float64      `json:"duration_seconds,omitempty"`
}

func restoreSummary(st s3backend.Store, plan *restore.Plan, out string, res *restore.Result, check string) restoreJSON {
	s := restoreJSON{
		Replica: st.String(), Output: out, DryRun: res == nil, TXID: plan.TXID, Timestamp: plan.Timestamp,
		PageSize: plan.PageSize, DBSize: plan.DBSize, Bytes: plan.Bytes, Files: objectsJSON(plan.Files),
	}
	if res != nil {
		s.Checksum = fmt.Sprintf("%016x", res.Checksum)
		s.Verified = res.Verified
		s.IntegrityCheck = check
		s.DurationSeconds = res.Duration.Seconds()
	}
	return s
}
