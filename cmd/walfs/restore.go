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
		ArgsUsage: "REPLICA_URL_OF_DB | --all --replica REPLICA_URL DIR",
		Description: "Downloads the newest snapshot at or before the target and the fewest files that carry it\n" +
			"forward, applies them in order, verifies every file's CRC and the database checksum, runs\n" +
			"SQLite's quick_check, and only then moves the result into place. An interrupted or failed\n" +
			"restore leaves nothing behind. REPLICA_URL_OF_DB names one database inside a replica (see\n" +
			"`walfs ls`). Credentials come from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY or AWS_*.\n" +
			"A new database file is created 0600 and one replaced with --force keeps its mode; directories\n" +
			"that --all creates are 0700. Use chmod to share them.\n\n" +
			"With --all, restores every database under REPLICA_URL into the directory tree DIR (each at\n" +
			"DIR/<its path in the replica>), one after another with the same verification, and prints a\n" +
			"summary. A failed database does not stop the others; the exit status is 1 if any failed.\n" +
			"With --timestamp, databases that held nothing yet at that time are skipped.\n\n" +
			"Examples:\n" +
			"  walfs restore -o app.db 's3://bucket/app/app.db?endpoint=http://127.0.0.1:9000'\n" +
			"  walfs restore --timestamp 2025-03-01T12:00:00Z -o before.db /backups/replica/app.db\n" +
			"  walfs restore --if-db-not-exists --if-replica-exists -o /data/app.db s3://bucket/app/app.db\n" +
			"  walfs restore --all --replica 's3://bucket/app?endpoint=http://127.0.0.1:9000' /var/lib/app",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the database to this `PATH` (default: the URL's last path element, in the current directory)"},
			&cli.BoolFlag{Name: "all", Usage: "restore every database under --replica into the directory given as the argument"},
			&cli.StringFlag{Name: "replica", Usage: "with --all, the replica `URL` (the mount's --replica) whose databases to restore"},
			&cli.StringFlag{Name: "txid", Usage: "restore exactly to this transaction `ID`: decimal, 0x-prefixed hex, or the 16 hex digits of an object name (default: latest)"},
			&cli.StringFlag{Name: "timestamp", Usage: "restore to the newest point committed at or before this RFC 3339 `TIME`, e.g. 2025-03-01T12:00:00Z"},
			&cli.BoolFlag{Name: "if-db-not-exists", Usage: "do nothing and exit 0 if the output already exists (for boot scripts; with --all, skip each existing output)"},
			&cli.BoolFlag{Name: "if-replica-exists", Usage: "do nothing and exit 0 if the replica holds no backups of the database (for first boots; with --all, of any database)"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing output, removing its -wal, -shm and -journal files"},
			&cli.StringFlag{Name: "integrity-check", Value: restore.IntegrityQuick, Usage: "SQLite `CHECK` to run on the rebuilt database: none, quick (PRAGMA quick_check) or full (PRAGMA integrity_check, slower)"},
			&cli.IntFlag{Name: "parallelism", Value: restore.DefaultParallelism, Usage: "download up to `N` objects at once, and a large object as up to N ranged GETs at once"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan (objects, levels, TXID ranges, sizes) and the point it lands on; download nothing"},
			&cli.BoolFlag{Name: "json", Usage: "print a machine-readable summary (or plan, with --dry-run) to stdout"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"WALFS_LOG_LEVEL"}, Usage: "`LEVEL` of the logs written to stderr: debug, info, warn or error"},
		},
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	if c.Bool("all") {
		return runRestoreAll(c)
	}
	if c.IsSet("replica") {
		return usagef("--replica goes with --all; to restore one database, give its URL as the argument")
	}
	if c.NArg() != 1 {
		return usagef("restore needs exactly one argument, the replica URL of a database (see walfs restore --help)")
	}
	rawURL := replicaArg(c.Args().First())
	target, err := parseRestoreFlags(c)
	if err != nil {
		return err
	}
	check := c.String("integrity-check")
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
		return printPlan(c.App.Writer, st.String(), plan)
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

// runRestoreAll is restore --all --replica URL DIR.
func runRestoreAll(c *cli.Context) error {
	switch {
	case c.NArg() != 1:
		return usagef("restore --all needs exactly one argument, the directory to restore into (see walfs restore --help)")
	case c.String("replica") == "":
		return usagef("restore --all needs --replica URL, the replica whose databases to restore")
	case c.IsSet("output"):
		return usagef("restore --all places each database under DIR; -o names the output of one database")
	}
	target, err := parseRestoreFlags(c)
	if err != nil {
		return err
	}
	if target.TXID != 0 {
		return usagef("--txid names a transaction of one database; with --all use --timestamp")
	}
	rawURL := replicaArg(c.String("replica"))
	dir := c.Args().First()
	rootName, _ := defaultOutput(rawURL) // names the database when the URL is one database's
	prog := newProgressPrinter(c.App.ErrWriter)
	log := newLogger(prog, c.String("log-level"), "text")
	prog.log = log

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := s3backend.New(ctx, s3backend.Config{URL: rawURL}, log)
	if err != nil {
		return err
	}
	start := time.Now()
	check := c.String("integrity-check")
	results, err := restore.RestoreAll(ctx, st, dir, restore.AllOptions{
		Options: restore.Options{
			Target:         target,
			IntegrityCheck: check,
			Force:          c.Bool("force"),
			Parallelism:    c.Int("parallelism"),
			Logger:         log,
			Progress:       prog.update,
		},
		RootName:    rootName,
		IfNotExists: c.Bool("if-db-not-exists"),
		DryRun:      c.Bool("dry-run"),
		Started:     func(db, _ string) { prog.begin(displayDB(db, rootName)) },
	})
	prog.finish()
	if results == nil {
		if c.Bool("if-replica-exists") && errors.Is(err, restore.ErrNoBackups) {
			log.Info("replica holds no backups; nothing to do (--if-replica-exists)", "replica", st.String())
			return nil
		}
		return err
	}
	if errors.Is(err, restore.ErrSomeFailed) {
		err = &s3backend.HintError{Err: err,
			Hint: "the summary names each failure; after fixing it, run again with --if-db-not-exists to restore only what is missing"}
	}
	sum := restoreAllSummary(st, dir, c.Bool("dry-run"), results, check, time.Since(start))
	var perr error
	switch {
	case c.Bool("json"):
		perr = writeJSON(c.App.Writer, sum)
	case c.Bool("dry-run"):
		perr = printAllPlans(c.App.Writer, results, rootName)
	default:
		perr = printAllSummary(c.App.Writer, sum)
	}
	if err == nil {
		err = perr
	}
	return err
}

// displayDB names a database of a replica in output.
func displayDB(db, rootName string) string {
	if db == "" {
		return rootName
	}
	return db
}

// restoreAllJSON is the --json output of restore --all; the text summary is
// printed from it too.
type restoreAllJSON struct {
	Replica         string          `json:"replica"`
	Dir             string          `json:"dir"`
	DryRun          bool            `json:"dry_run"`
	Restored        int             `json:"restored"`
	Skipped         int             `json:"skipped"`
	Failed          int             `json:"failed"`
	Bytes           int64           `json:"bytes"`
	DurationSeconds float64         `json:"duration_seconds"`
	Databases       []dbRestoreJSON `json:"databases"`
}

// dbRestoreJSON is one database of restore --all: its status and, once
// planned, the fields of a single restore's summary.
type dbRestoreJSON struct {
	DB     string `json:"db"`
	Output string `json:"output"`
	Status string `json:"status"` // restored, planned, skipped or failed
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	*restoreJSON
}

func restoreAllSummary(st s3backend.Store, dir string, dryRun bool, results []restore.DBResult, check string, took time.Duration) restoreAllJSON {
	s := restoreAllJSON{Replica: st.String(), Dir: dir, DryRun: dryRun, DurationSeconds: took.Seconds()}
	for _, r := range results {
		d := dbRestoreJSON{DB: r.DB, Output: r.Output, Status: r.Status(), Reason: r.Skipped}
		if r.Err != nil {
			d.Error = oneLine(r.Err)
		}
		if r.Plan != nil {
			one := restoreSummary(st, r.Plan, r.Output, r.Result, check)
			d.restoreJSON = &one
		}
		switch d.Status {
		case "restored":
			s.Restored++
			s.Bytes += r.Plan.Bytes
		case "planned":
			s.Bytes += r.Plan.Bytes
		case "skipped":
			s.Skipped++
		case "failed":
			s.Failed++
		}
		s.Databases = append(s.Databases, d)
	}
	return s
}

// printAllSummary writes the table restore --all ends with.
func printAllSummary(w io.Writer, s restoreAllJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tSTATUS\tTXID\tCOMMITTED\tSIZE\tFILES\tTIME\tOUTPUT")
	var notes []string
	for _, d := range s.Databases {
		txid, when, size, files, took := "-", "-", "-", "-", "-"
		if d.restoreJSON != nil {
			txid, when = fmt.Sprint(d.TXID), fmtWhen(d.Timestamp)
			size, files = humanBytes(d.DBSize), fmt.Sprint(len(d.Files))
			if d.DurationSeconds > 0 {
				took = (time.Duration(d.DurationSeconds * float64(time.Second))).Round(time.Millisecond).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.DB, d.Status, txid, when, size, files, took, d.Output)
		switch {
		case d.Error != "":
			notes = append(notes, d.DB+": "+d.Error)
		case d.Reason != "":
			notes = append(notes, d.DB+": skipped: "+d.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	_, err := fmt.Fprintf(w, "restored %d of %d databases into %s (%s downloaded) in %s; %d skipped, %d failed\n",
		s.Restored, len(s.Databases), s.Dir, humanBytes(s.Bytes),
		time.Duration(s.DurationSeconds*float64(time.Second)).Round(time.Millisecond), s.Skipped, s.Failed)
	return err
}

// printAllPlans writes the plans of restore --all --dry-run.
func printAllPlans(w io.Writer, results []restore.DBResult, rootName string) error {
	var total int64
	planned := 0
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		name := displayDB(r.DB, rootName)
		switch {
		case r.Err != nil:
			fmt.Fprintf(w, "%s: cannot plan: %s\n", name, oneLine(r.Err))
		case r.Skipped != "":
			fmt.Fprintf(w, "%s: skipped: %s\n", name, r.Skipped)
		default:
			planned++
			total += r.Plan.Bytes
			if err := printPlan(w, name+" → "+r.Output, r.Plan); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(w, "\n%d of %d databases planned, %s to download\n", planned, len(results), humanBytes(total))
	return err
}

// parseRestoreFlags checks the flags restore and restore --all share and
// returns the target.
func parseRestoreFlags(c *cli.Context) (restore.Target, error) {
	target, err := parseTarget(c.String("txid"), c.String("timestamp"))
	if err != nil {
		return target, err
	}
	check := c.String("integrity-check")
	if check != restore.IntegrityNone && check != restore.IntegrityQuick && check != restore.IntegrityFull {
		return target, usagef("--integrity-check must be none, quick or full, got %q", check)
	}
	if c.Int("parallelism") < 1 {
		return target, usagef("--parallelism must be at least 1, got %d", c.Int("parallelism"))
	}
	if _, err := parseLevel(c.String("log-level")); err != nil {
		return target, err
	}
	return target, nil
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

	label string // database being restored (restore --all), "" for one

	mu    sync.Mutex // guards drawn and writes to w
	drawn bool       // a progress line is on screen
}

// begin restarts the rate and ETA for the next database of restore --all.
func (p *progressPrinter) begin(label string) {
	p.start, p.last, p.label = time.Now(), time.Time{}, label
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
		log := p.log
		if p.label != "" {
			log = log.With("db", p.label)
		}
		log.Info("download progress", "bytes", pr.BytesDone, "total_bytes", pr.Bytes,
			"files", pr.FilesDone, "total_files", pr.Files, "rate", humanBytes(int64(rate))+"/s", "eta", eta)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	if p.label != "" {
		fmt.Fprintf(p.w, "%s: ", p.label)
	}
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
func printPlan(w io.Writer, what string, plan *restore.Plan) error {
	fmt.Fprintf(w, "plan for %s: lands on TXID %d (committed %s); database %s (page size %d)\n",
		what, plan.TXID, fmtWhen(plan.Timestamp), humanBytes(plan.DBSize), plan.PageSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tTXIDS\tBYTES\tSTORED AT\tKEY")
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
