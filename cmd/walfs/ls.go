package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/restore"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the databases in a replica, or the snapshots and levels of one database",
		ArgsUsage: "REPLICA_URL | REPLICA_URL_OF_DB",
		Description: "With the URL of a replica, lists its databases with their size, latest TXID and last\n" +
			"write time (one small read per database for the size). With the URL of one database\n" +
			"(a replica rooted at it, as `walfs restore` takes), lists its snapshots and, per level,\n" +
			"the number of files, TXID range, bytes and times.\n\n" +
			"Examples:\n" +
			"  walfs ls 's3://bucket/app?endpoint=http://127.0.0.1:9000'\n" +
			"  walfs ls --files /backups/replica/app.db",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "files", Usage: "for one database, list every object of every level, not just the per-level summary"},
			&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON to stdout (every object is included)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"WALFS_LOG_LEVEL"}, Usage: "`LEVEL` of the logs written to stderr: debug, info, warn or error"},
		},
		Action: runLs,
	}
}

func runLs(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("ls needs exactly one argument, a replica URL (see walfs ls --help)")
	}
	if _, err := parseLevel(c.String("log-level")); err != nil {
		return err
	}
	log := newLogger(c.App.ErrWriter, c.String("log-level"), "text")
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := s3backend.New(ctx, s3backend.Config{URL: replicaArg(c.Args().First())}, log)
	if err != nil {
		return err
	}
	dbs, err := st.ListDatabases(ctx)
	if err != nil {
		return err // the store's error names it already
	}
	if len(dbs) == 0 {
		return &s3backend.HintError{
			Err:  fmt.Errorf("list %s: %w", st, restore.ErrNoBackups),
			Hint: "check the replica URL: it must name the replica root or one database's directory",
		}
	}

	if len(dbs) == 1 && dbs[0] == "" { // the URL names one database
		levels, err := restore.ListLevels(ctx, st, "")
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, levelsJSON(st, levels))
		}
		return printLevels(c.App.Writer, st, levels, c.Bool("files"))
	}

	sums := make([]restore.Summary, 0, len(dbs))
	for _, db := range dbs {
		s, err := restore.Summarize(ctx, st, db)
		if err != nil {
			return err
		}
		sums = append(sums, s)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, databasesJSON(st, sums))
	}
	return printDatabases(c.App.Writer, sums)
}

func printDatabases(w io.Writer, sums []restore.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tSIZE\tTXID\tLAST WRITE\tOBJECTS\tSTORED")
	for _, s := range sums {
		name := s.DB
		if name == "" {
			name = "."
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", name, humanBytes(s.Size), s.TXID, fmtWhen(s.LastWrite), s.Files, humanBytes(s.Bytes))
	}
	return tw.Flush()
}

// levelName names a level in tables.
func levelName(level int) string {
	if level == s3backend.LevelSnapshot {
		return "9 (snapshots)"
	}
	return fmt.Sprintf("%d", level)
}

func printLevels(w io.Writer, st s3backend.Store, levels []restore.LevelSummary, files bool) error {
	fmt.Fprintf(w, "replica %s\n\n", st)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range levels {
		if l.Level == s3backend.LevelSnapshot {
			fmt.Fprintln(tw, "SNAPSHOT TXID\tBYTES\tSTORED AT\tKEY")
			for _, f := range l.Files {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", f.MaxTXID, humanBytes(f.Size), fmtWhen(f.CreatedAt), s3backend.Key(f))
			}
			fmt.Fprintln(tw)
		}
	}
	fmt.Fprintln(tw, "LEVEL\tFILES\tTXIDS\tBYTES\tOLDEST\tNEWEST")
	for _, l := range levels {
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%s\t%s\t%s\n", levelName(l.Level), len(l.Files), l.MinTXID, l.MaxTXID,
			humanBytes(l.Bytes), fmtWhen(l.Oldest), fmtWhen(l.Newest))
	}
	if files {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "LEVEL\tTXIDS\tBYTES\tSTORED AT\tKEY")
		for _, l := range levels {
			for _, f := range l.Files {
				fmt.Fprintf(tw, "%d\t%d-%d\t%s\t%s\t%s\n", f.Level, f.MinTXID, f.MaxTXID, humanBytes(f.Size), fmtWhen(f.CreatedAt), s3backend.Key(f))
			}
		}
	}
	return tw.Flush()
}

// databaseJSON is one database in `ls --json` of a replica.
type databaseJSON struct {
	DB        string    `json:"db"`
	Size      int64     `json:"size"`
	PageSize  uint32    `json:"page_size"`
	TXID      uint64    `json:"txid"`
	LastWrite time.Time `json:"last_write"`
	Objects   int       `json:"objects"`
	Bytes     int64     `json:"bytes"`
}

func databasesJSON(st s3backend.Store, sums []restore.Summary) any {
	dbs := make([]databaseJSON, len(sums))
	for i, s := range sums {
		dbs[i] = databaseJSON{DB: s.DB, Size: s.Size, PageSize: s.PageSize, TXID: s.TXID, LastWrite: s.LastWrite, Objects: s.Files, Bytes: s.Bytes}
	}
	return struct {
		Replica   string         `json:"replica"`
		Databases []databaseJSON `json:"databases"`
	}{st.String(), dbs}
}

// levelJSON is one level in `ls --json` of a database.
type levelJSON struct {
	Level   int          `json:"level"`
	MinTXID uint64       `json:"min_txid"`
	MaxTXID uint64       `json:"max_txid"`
	Bytes   int64        `json:"bytes"`
	Oldest  time.Time    `json:"oldest"`
	Newest  time.Time    `json:"newest"`
	Objects []objectJSON `json:"objects"`
}

func levelsJSON(st s3backend.Store, levels []restore.LevelSummary) any {
	out := make([]levelJSON, len(levels))
	for i, l := range levels {
		out[i] = levelJSON{Level: l.Level, MinTXID: l.MinTXID, MaxTXID: l.MaxTXID, Bytes: l.Bytes, Oldest: l.Oldest, Newest: l.Newest, Objects: objectsJSON(l.Files)}
	}
	return struct {
		Replica string      `json:"replica"`
		Levels  []levelJSON `json:"levels"`
	}{st.String(), out}
}

// objectJSON describes one replica object in --json output.
type objectJSON struct {
	Key       string    `json:"key"`
	Level     int       `json:"level"`
	MinTXID   uint64    `json:"min_txid"`
	MaxTXID   uint64    `json:"max_txid"`
	Bytes     int64     `json:"bytes"`
	CreatedAt time.Time `json:"created_at"`
}

func objectsJSON(infos []s3backend.FileInfo) []objectJSON {
	out := make([]objectJSON, len(infos))
	for i, f := range infos {
		out[i] = objectJSON{Key: s3backend.Key(f), Level: f.Level, MinTXID: f.MinTXID, MaxTXID: f.MaxTXID, Bytes: f.Size, CreatedAt: f.CreatedAt}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanBytes formats n with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// fmtWhen formats a time for tables; zero is "-".
func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
