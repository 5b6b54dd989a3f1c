package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/wal/replicate"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show how far each database of a running mount is replicated",
		ArgsUsage: "[MOUNTPOINT]",
		Description: "Asks the running `walfs mount` at MOUNTPOINT (or every walfs mount on this machine) for\n" +
			"the state of each database: the last TXID captured locally and the last one in the replica,\n" +
			"the replication lag (age of the oldest transaction not yet uploaded), bytes waiting in the\n" +
			"local spool, the last upload, the last error, the store requests of the last hour, how often\n" +
			"an inconsistent replica was repaired with a new snapshot (and why), and any maintenance job\n" +
			"that gave up (and why).\n" +
			"It sends no request to the store.\n\n" +
			"Examples:\n" +
			"  walfs status ./mnt\n" +
			"  walfs status --json",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON to stdout: an array with one object per mount"},
		},
		Action: runStatus,
	}
}

// statusReport is what GET /status on the control socket returns.
type statusReport struct {
	MountPoint    string            `json:"mount_point,omitempty"` // filled in by the client
	Role          string            `json:"role,omitempty"`        // "follower" for a follower mount; empty for the primary
	Follow        *followJSON       `json:"follow,omitempty"`      // a follower's polling
	DataDir       string            `json:"data_dir"`
	Replica       string            `json:"replica"`
	StoreRequests map[string]uint64 `json:"store_requests"` // since the mount started, by operation
	Head          *headStatusJSON   `json:"head,omitempty"` // the head record followers poll; nil when not published
	Databases     []dbStatusJSON    `json:"databases"`
}

type dbStatusJSON struct {
	DB                    string             `json:"db"`
	LocalTXID             uint64             `json:"local_txid"`
	ReplicatedTXID        uint64             `json:"replicated_txid"`
	LagSeconds            float64            `json:"lag_seconds"`
	SpoolBytes            int64              `json:"spool_bytes"`
	LastUpload            *time.Time         `json:"last_upload,omitempty"`
	LastError             string             `json:"last_error,omitempty"`
	LastErrorAt           *time.Time         `json:"last_error_at,omitempty"`
	UploadError           string             `json:"upload_error,omitempty"`
	UploadFailingSince    *time.Time         `json:"upload_failing_since,omitempty"` // start of the current run of failed uploads
	UploadFailures        int                `json:"upload_failures,omitempty"`      // failed attempts in that run
	StoreRequestsLastHour uint64             `json:"store_requests_last_hour"`
	Captured              uint64             `json:"transactions_captured"`
	IndexFrames           uint64             `json:"wal_index_frames,omitempty"`  // WAL frames taken on the wal-index's word, not read
	IndexRefused          uint64             `json:"wal_index_refused,omitempty"` // wal-indexes that disagreed with their WAL
	OutsideChecks         uint64             `json:"outside_checks,omitempty"`    // reconciles after writes outside SQLite's protocol
	OutsideSnapshots      uint64             `json:"outside_snapshots,omitempty"` // of those, the ones that found the files changed
	Uploads               uint64             `json:"uploads"`
	Compactions           map[string]uint64  `json:"compactions,omitempty"` // by level
	Snapshots             uint64             `json:"snapshots"`
	Deleted               uint64             `json:"retention_deleted"`
	Errors                map[string]uint64  `json:"errors,omitempty"`
	Levels                []replicaLevelJSON `json:"levels"`
	Repairs               uint64             `json:"repairs"`               // inconsistent replicas replaced by a new snapshot
	LastRepair            *repairJSON        `json:"last_repair,omitempty"` // the newest of them
	Stuck                 []string           `json:"stuck,omitempty"`       // maintenance jobs that gave up, with why

	// A follower's databases: LocalTXID is the point readers see,
	// ReplicatedTXID the newest the follower knows of, LagSeconds how long
	// it has been behind that.
	Waiting string     `json:"waiting,omitempty"` // what the pending update waits for
	Applied uint64     `json:"applied,omitempty"` // updates applied since start
	Reloads uint64     `json:"reloads,omitempty"` // full restores since start
	Commit  *time.Time `json:"commit,omitempty"`  // when the primary committed LocalTXID
}

type repairJSON struct {
	At   time.Time `json:"at"`
	TXID uint64    `json:"txid"` // the new snapshot
	Why  string    `json:"why"`
}

type replicaLevelJSON struct {
	Level   int    `json:"level"`
	Files   int    `json:"files"`
	Bytes   int64  `json:"bytes"`
	MinTXID uint64 `json:"min_txid"`
	MaxTXID uint64 `json:"max_txid"`
}

// buildStatus gathers the report of a running mount. It sends no request to
// the store.
func buildStatus(dbs []replicate.DBStatus, count *instrument.Counter, dataDir, replica string) statusReport {
	rep := statusReport{DataDir: dataDir, Replica: replica, StoreRequests: map[string]uint64{}, Databases: []dbStatusJSON{}}
	for op, oc := range count.Ops() {
		rep.StoreRequests[op] = oc.Calls
	}
	for _, s := range dbs {
		j := dbStatusJSON{
			DB: s.DB, LocalTXID: s.LocalTXID, ReplicatedTXID: s.ReplicatedTXID, LagSeconds: s.Lag.Seconds(),
			SpoolBytes: s.SpoolBytes, LastUpload: timePtr(s.LastUpload), LastError: s.LastError,
			LastErrorAt: timePtr(s.LastErrorAt), UploadError: s.UploadError,
			UploadFailingSince: timePtr(s.UploadFailingSince), UploadFailures: s.UploadFailures,
			StoreRequestsLastHour: count.LastHour(s.DB), Captured: s.Captured, Uploads: s.Uploads,
			IndexFrames: s.IndexFrames, IndexRefused: s.IndexRefused, OutsideChecks: s.OutsideChecks, OutsideSnapshots: s.OutsideSnaps,
			Snapshots: s.Snapshots, Deleted: s.Deleted, Errors: s.Errors, Levels: []replicaLevelJSON{},
			Repairs: s.Repairs, Stuck: s.Stuck,
		}
		if r := s.LastRepair; r != nil {
			j.LastRepair = &repairJSON{At: r.At.UTC(), TXID: r.TXID, Why: r.Why}
		}
		for level, n := range s.Compactions {
			if n > 0 {
				if j.Compactions == nil {
					j.Compactions = map[string]uint64{}
				}
				j.Compactions[fmt.Sprint(level)] = n
			}
		}
		for _, l := range s.Levels {
			j.Levels = append(j.Levels, replicaLevelJSON{Level: l.Level, Files: l.Files, Bytes: l.Bytes, MinTXID: l.MinTXID, MaxTXID: l.MaxTXID})
		}
		rep.Databases = append(rep.Databases, j)
	}
	return rep
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// statusRoute serves GET /status on the control socket.
func statusRoute(report func() statusReport) controlRoute {
	return controlRoute{pattern: "GET /status", handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(report())
	}}
}

// controlRoute is an extra handler on the control socket.
type controlRoute struct {
	pattern string
	handler http.HandlerFunc
}

func runStatus(c *cli.Context) error {
	mounts, err := mountPoints(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	reports, err := askEach(ctx, mounts, fetchStatus)
	now := time.Now()
	perr := printReports(c, reports, func(w io.Writer, i int, rep statusReport) {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printStatus(w, rep, now)
	})
	return errors.Join(perr, err)
}

// fetchStatus asks the mount at mnt for its status.
func fetchStatus(ctx context.Context, mnt string) (statusReport, error) {
	rep, err := askMount[statusReport](ctx, mnt, "status", nil, "ask walfs mount for its status")
	rep.MountPoint = mnt
	return rep, err
}

// printStatus writes one mount's report as a table.
func printStatus(w io.Writer, rep statusReport, now time.Time) {
	var total uint64
	for _, n := range rep.StoreRequests {
		total += n
	}
	fmt.Fprintf(w, "%s  (data %s, replica %s, %d store requests since start)\n", rep.MountPoint, rep.DataDir, rep.Replica, total)
	if rep.Role == "follower" {
		printFollowStatus(w, rep, now)
		return
	}
	printHeadStatus(w, rep.Head, now)
	if len(rep.Databases) == 0 {
		fmt.Fprintln(w, "no databases replicated yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tLOCAL TXID\tREPLICATED\tLAG\tSPOOL\tLAST UPLOAD\tREQUESTS/1H\tREPAIRS\tLAST ERROR")
	var notes []string
	for _, d := range rep.Databases {
		if r := d.LastRepair; r != nil {
			notes = append(notes, fmt.Sprintf("%s: repaired %d time(s); last %s: new snapshot at TXID %d because %s", d.DB, d.Repairs, ago(now, r.At), r.TXID, r.Why))
		}
		for _, why := range d.Stuck {
			notes = append(notes, fmt.Sprintf("%s: STUCK: %s", d.DB, why))
		}
		lastErr := "-"
		if d.LastError != "" {
			lastErr = d.LastError
			if d.LastErrorAt != nil {
				lastErr = ago(now, *d.LastErrorAt) + ": " + lastErr
			}
		}
		if d.UploadFailingSince != nil && d.UploadError != "" {
			// The queue cannot drain: say why first, and since when.
			lastErr = fmt.Sprintf("uploads failing since %s (%d attempts): %s", ago(now, *d.UploadFailingSince), d.UploadFailures, d.UploadError)
		}
		last := "-"
		if d.LastUpload != nil {
			last = ago(now, *d.LastUpload)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", d.DB, d.LocalTXID, d.ReplicatedTXID,
			time.Duration(d.LagSeconds*float64(time.Second)).Round(time.Millisecond), humanBytes(d.SpoolBytes),
			last, d.StoreRequestsLastHour, d.Repairs, lastErr)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

// ago formats how long before now t was.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		d = 0
	case d >= 48*time.Hour:
		return t.UTC().Format(time.RFC3339)
	case d >= time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s") + " ago"
	}
	return d.Round(time.Second).String() + " ago"
}
