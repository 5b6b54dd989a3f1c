package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/replicate"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "prove that each database's latest point in the replica is the live database",
		ArgsUsage: "[MOUNTPOINT] | --data-dir DIR --replica URL",
		Description: "Asks the running `walfs mount` at MOUNTPOINT (or every walfs mount on this machine) to\n" +
			"upload what it captured and then, for every database, to compare the checksum of the\n" +
			"database as SQLite reads it (the db file and the committed frames of its WAL) with the\n" +
			"checksum the replica records for its latest point. The replica side costs one listing per\n" +
			"level and the header and trailer of each file a restore of that point reads (small ranged\n" +
			"reads; no snapshot is downloaded); the checksums must chain from file to file. While a\n" +
			"database is read, its commits wait (one read of every page).\n\n" +
			"Prints one line per database and exits 1 if any differs or could not be verified. A\n" +
			"database whose replica differs gets a new snapshot at once (unless --no-repair), which the\n" +
			"line names; `walfs status` counts repairs.\n\n" +
			"With --data-dir and --replica instead of a mount point, compares the files of a data dir no\n" +
			"mount serves (it refuses while one does) with the replica, and repairs nothing: the next\n" +
			"mount snapshots any database that does not match its replica.\n\n" +
			"Examples:\n" +
			"  walfs verify ./mnt\n" +
			"  walfs verify --json\n" +
			"  walfs verify --data-dir /var/lib/app --replica 's3://bucket/app?endpoint=http://127.0.0.1:9000'",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up on uploads and store reads after this long"},
			&cli.BoolFlag{Name: "no-repair", Usage: "only report differences; do not write a repairing snapshot"},
			&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON to stdout: an array with one object per mount"},
			&cli.StringFlag{Name: "data-dir", Usage: "without a running mount: the data dir whose databases to compare with --replica"},
			&cli.StringFlag{Name: "replica", Usage: "with --data-dir, the replica `URL` (the mount's --replica)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"WALFS_LOG_LEVEL"}, Usage: "`LEVEL` of the logs written to stderr (with --data-dir): debug, info, warn or error"},
		},
		Action: runVerify,
	}
}

// verifyRequest is the body of POST /verify on the control socket.
type verifyRequest struct {
	Timeout  time.Duration `json:"timeout"`
	NoRepair bool          `json:"no_repair"`
}

// verifyReport is what a mount (or a data dir) answers.
type verifyReport struct {
	MountPoint string           `json:"mount_point,omitempty"` // filled in by the client
	DataDir    string           `json:"data_dir"`
	Replica    string           `json:"replica"`
	Databases  []comparisonJSON `json:"databases"`
	Error      string           `json:"error,omitempty"` // why the mount could not verify at all
}

// Outcomes of one database's comparison.
const (
	verifyEqual     = "equal"
	verifyDifferent = "different"
	verifyError     = "not verified"
	verifySkipped   = "skipped"
)

type comparisonJSON struct {
	DB          string `json:"db"`
	Status      string `json:"status"` // equal, different, not verified, skipped
	TXID        uint64 `json:"txid"`
	Live        string `json:"live_checksum,omitempty"`
	Captured    string `json:"captured_checksum,omitempty"`
	Replica     string `json:"replica_checksum,omitempty"`
	Files       int    `json:"replica_files,omitempty"`
	Problem     string `json:"problem,omitempty"`
	RepairTXID  uint64 `json:"repair_txid,omitempty"`
	RepairError string `json:"repair_error,omitempty"`
}

func comparisonsJSON(cs []replicate.Comparison) []comparisonJSON {
	out := []comparisonJSON{}
	sum := func(c fmt.Stringer, zero bool) string {
		if zero {
			return ""
		}
		return c.String()
	}
	for _, c := range cs {
		j := comparisonJSON{
			DB: c.DB, TXID: c.TXID, Files: c.Files, RepairTXID: c.RepairTXID, RepairError: c.RepairErr,
			Live: sum(c.Live, c.Live == 0), Captured: sum(c.Captured, c.Captured == 0), Replica: sum(c.Replica, c.Replica == 0),
		}
		switch {
		case c.Equal():
			j.Status = verifyEqual
		case c.Difference != "":
			j.Status, j.Problem = verifyDifferent, c.Difference
		case c.Err != "":
			j.Status, j.Problem = verifyError, c.Err
		default:
			j.Status, j.Problem = verifySkipped, c.Skipped
		}
		out = append(out, j)
	}
	return out
}

// verifyRoute serves POST /verify on the control socket.
func verifyRoute(verify func(ctx context.Context, req verifyRequest) verifyReport) controlRoute {
	return jsonRoute("POST /verify", verify)
}

// mountVerifier is what a mount does for POST /verify: upload what was
// captured, then compare (and repair) every database.
func mountVerifier(rep *replicate.Replicator, dataDir, replica string, defaultTimeout time.Duration) func(context.Context, verifyRequest) verifyReport {
	return func(ctx context.Context, req verifyRequest) verifyReport {
		if req.Timeout <= 0 {
			req.Timeout = defaultTimeout
		}
		ctx, cancel := context.WithTimeout(ctx, req.Timeout)
		defer cancel()
		out := verifyReport{DataDir: dataDir, Replica: replica}
		if err := rep.Flush(ctx); err != nil {
			out.Error = oneLine(err) // each database says what it could not verify
		}
		out.Databases = comparisonsJSON(rep.Compare(ctx, !req.NoRepair))
		return out
	}
}

func runVerify(c *cli.Context) error {
	var reports []verifyReport
	var askErr error
	switch {
	case c.String("data-dir") != "":
		if c.NArg() > 0 {
			return usagef("verify takes a mount point or --data-dir, not both (see walfs verify --help)")
		}
		rep, err := verifyDataDir(c)
		if err != nil {
			return err
		}
		reports = append(reports, rep)
	case c.IsSet("replica"):
		return usagef("--replica goes with --data-dir; a mount knows its replica")
	default:
		mounts, err := mountPoints(c)
		if err != nil {
			return err
		}
		req := verifyRequest{Timeout: c.Duration("timeout"), NoRepair: c.Bool("no-repair")}
		ctx, cancel := context.WithTimeout(c.Context, req.Timeout+10*time.Second)
		defer cancel()
		reports, askErr = askEach(ctx, mounts, func(ctx context.Context, mnt string) (verifyReport, error) {
			return requestVerify(ctx, mnt, req)
		})
	}
	if err := printReports(c, reports, printVerifyReport); err != nil {
		return err
	}
	return errors.Join(askErr, verifyFailures(reports))
}

// verifyDataDir compares a data dir no mount serves with --replica.
func verifyDataDir(c *cli.Context) (verifyReport, error) {
	if c.String("replica") == "" {
		return verifyReport{}, usagef("verify --data-dir needs --replica URL, the replica to compare with")
	}
	dataDir, err := absPath(c.String("data-dir"))
	if err != nil {
		return verifyReport{}, usagef("data dir %q: %v", c.String("data-dir"), err)
	}
	unlock, err := lockDataDir(dataDir) // no mount may change the files meanwhile
	if err != nil {
		return verifyReport{}, err
	}
	defer unlock()
	log := newLogger(c.App.ErrWriter, c.String("log-level"), "text")
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	st, err := s3backend.New(ctx, s3backend.Config{URL: replicaArg(c.String("replica"))}, log)
	if err != nil {
		return verifyReport{}, err
	}
	cs, err := replicate.CompareDir(ctx, st, dataDir)
	if err != nil {
		return verifyReport{}, err
	}
	return verifyReport{MountPoint: dataDir, DataDir: dataDir, Replica: st.String(), Databases: comparisonsJSON(cs)}, nil
}

// requestVerify asks the mount at mnt to verify its databases.
func requestVerify(ctx context.Context, mnt string, req verifyRequest) (verifyReport, error) {
	rep, err := askMount[verifyReport](ctx, mnt, "verify", req, "ask walfs mount to verify its replica")
	rep.MountPoint = mnt
	return rep, err
}

// printVerifyReport is printVerify for printReports.
func printVerifyReport(w io.Writer, _ int, rep verifyReport) { printVerify(w, rep) }

// printVerify writes one line per database: its path under the mount
// point, the outcome and, unless equal, why.
func printVerify(w io.Writer, rep verifyReport) {
	if len(rep.Databases) == 0 {
		fmt.Fprintf(w, "%s: no databases\n", rep.MountPoint)
	}
	for _, d := range rep.Databases {
		path := filepath.Join(rep.MountPoint, filepath.FromSlash(d.DB))
		switch d.Status {
		case verifyEqual:
			fmt.Fprintf(w, "%s: equal at TXID %d (checksum %s, %d replica file(s))\n", path, d.TXID, d.Live, d.Files)
		case verifyDifferent:
			line := fmt.Sprintf("%s: DIFFERENT at TXID %d: %s", path, d.TXID, d.Problem)
			switch {
			case d.RepairTXID > 0:
				line += fmt.Sprintf("; repaired: new snapshot at TXID %d", d.RepairTXID)
			case d.RepairError != "":
				line += "; repair failed: " + d.RepairError
			}
			fmt.Fprintln(w, line)
		case verifyError:
			fmt.Fprintf(w, "%s: NOT VERIFIED: %s\n", path, d.Problem)
		default:
			fmt.Fprintf(w, "%s: skipped: %s\n", path, d.Problem)
		}
	}
}

// verifyFailures is the command's error when any database differs or
// could not be verified; nil when all are equal (or skipped).
func verifyFailures(reports []verifyReport) error {
	var different, unverified, total int
	for _, rep := range reports {
		if rep.Error != "" && len(rep.Databases) == 0 {
			return fmt.Errorf("%s: %s", rep.MountPoint, rep.Error)
		}
		for _, d := range rep.Databases {
			total++
			switch d.Status {
			case verifyDifferent:
				different++
			case verifyError:
				unverified++
			}
		}
	}
	switch {
	case different > 0 && unverified > 0:
		return fmt.Errorf("%d of %d databases differ from their replica and %d could not be verified", different, total, unverified)
	case different > 0:
		return fmt.Errorf("%d of %d databases differ from their replica", different, total)
	case unverified > 0:
		return fmt.Errorf("%d of %d databases could not be verified", unverified, total)
	}
	return nil
}
