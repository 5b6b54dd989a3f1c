package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/walfs/walfs/s3backend/instrument"
	"github.com/walfs/walfs/wal/head"
	"github.com/walfs/walfs/wal/replicate"
)

// metricsSource is what the metrics are read from on every scrape.
type metricsSource struct {
	dbs      func() []replicate.DBStatus
	requests func() map[string]instrument.OpCount
	head     *head.Publisher // nil: no head record published
}

// startMetrics serves Prometheus text metrics on addr at /metrics until the
// returned stop is called. Listening happens before it returns, so a busy
// address fails the mount at once.
func startMetrics(addr string, src metricsSource, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve metrics on %s: %w (check --metrics-addr)", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(w, src.dbs(), src.requests())
		if src.head != nil {
			writeHeadMetrics(w, src.head.Status())
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// writeMetrics writes the Prometheus text exposition (format 0.0.4).
func writeMetrics(w io.Writer, dbs []replicate.DBStatus, requests map[string]instrument.OpCount) {
	p := &promWriter{w: w}
	perDB := func(name, typ, help string, value func(s replicate.DBStatus) float64) {
		p.family(name, typ, help)
		for _, s := range dbs {
			p.sample(name, value(s), "db", s.DB)
		}
	}
	perDB("walfs_replication_lag_seconds", "gauge", "Age of the oldest captured transaction not yet in the replica (0 when none).",
		func(s replicate.DBStatus) float64 { return s.Lag.Seconds() })
	perDB("walfs_spool_bytes", "gauge", "Bytes of captured transactions waiting in the local spool.",
		func(s replicate.DBStatus) float64 { return float64(s.SpoolBytes) })
	perDB("walfs_local_txid", "gauge", "Highest TXID captured locally.",
		func(s replicate.DBStatus) float64 { return float64(s.LocalTXID) })
	perDB("walfs_replicated_txid", "gauge", "Highest TXID the replica holds.",
		func(s replicate.DBStatus) float64 { return float64(s.ReplicatedTXID) })
	perDB("walfs_transactions_captured_total", "counter", "Transactions captured since start (TXIDs assigned; a local snapshot takes one too).",
		func(s replicate.DBStatus) float64 { return float64(s.Captured) })
	perDB("walfs_wal_index_frames_total", "counter", "WAL frames captured on the wal-index's word, without being read (passthrough capture).",
		func(s replicate.DBStatus) float64 { return float64(s.IndexFrames) })
	perDB("walfs_wal_index_refused_total", "counter", "Wal-indexes (-shm) that disagreed with their WAL; each is then not used until the WAL goes away.",
		func(s replicate.DBStatus) float64 { return float64(s.IndexRefused) })
	perDB("walfs_outside_checks_total", "counter", "Reconciles of a database after a write outside SQLite's protocol (cp, rsync, a truncate, a new file).",
		func(s replicate.DBStatus) float64 { return float64(s.OutsideChecks) })
	perDB("walfs_outside_snapshots_total", "counter", "Of those reconciles, the ones that found the files changed and wrote a snapshot.",
		func(s replicate.DBStatus) float64 { return float64(s.OutsideSnaps) })
	perDB("walfs_uploads_total", "counter", "Level-0 files and local snapshots uploaded since start.",
		func(s replicate.DBStatus) float64 { return float64(s.Uploads) })
	perDB("walfs_upload_bytes_total", "counter", "Bytes of level-0 files and local snapshots uploaded since start.",
		func(s replicate.DBStatus) float64 { return float64(s.UploadedBytes) })
	perDB("walfs_last_upload_timestamp_seconds", "gauge", "Unix time of the last finished upload (0 when none since start).",
		func(s replicate.DBStatus) float64 { return unixSeconds(s.LastUpload) })
	perDB("walfs_upload_failing_since_timestamp_seconds", "gauge", "Unix time the current run of failed uploads began (0 while uploads succeed).",
		func(s replicate.DBStatus) float64 { return unixSeconds(s.UploadFailingSince) })
	perDB("walfs_snapshots_total", "counter", "Snapshots written by maintenance (on schedule or by size) since start.",
		func(s replicate.DBStatus) float64 { return float64(s.Snapshots) })
	perDB("walfs_repairs_total", "counter", "Inconsistent replicas replaced by a new snapshot of the local database since start.",
		func(s replicate.DBStatus) float64 { return float64(s.Repairs) })
	perDB("walfs_maintenance_stuck", "gauge", "Maintenance jobs that gave up after repeated failures (they retry after the next upload).",
		func(s replicate.DBStatus) float64 { return float64(len(s.Stuck)) })
	perDB("walfs_retention_deleted_files_total", "counter", "Replica files deleted by retention since start.",
		func(s replicate.DBStatus) float64 { return float64(s.Deleted) })

	p.family("walfs_compactions_total", "counter", "Files written by compaction since start, by level.")
	for _, s := range dbs {
		for level := 1; level < len(s.Compactions); level++ {
			p.sample("walfs_compactions_total", float64(s.Compactions[level]), "db", s.DB, "level", strconv.Itoa(level))
		}
	}
	p.family("walfs_errors_total", "counter", "Failures since start, by kind (upload, seed, compaction, snapshot, retention).")
	for _, s := range dbs {
		for _, kind := range slices.Sorted(maps.Keys(s.Errors)) {
			p.sample("walfs_errors_total", float64(s.Errors[kind]), "db", s.DB, "kind", kind)
		}
	}
	p.family("walfs_replica_files", "gauge", "Files the replica holds, by level (from walfs's index; no listing).")
	for _, s := range dbs {
		for _, l := range s.Levels {
			p.sample("walfs_replica_files", float64(l.Files), "db", s.DB, "level", strconv.Itoa(l.Level))
		}
	}
	p.family("walfs_replica_bytes", "gauge", "Bytes the replica holds, by level (from walfs's index; no listing).")
	for _, s := range dbs {
		for _, l := range s.Levels {
			p.sample("walfs_replica_bytes", float64(l.Bytes), "db", s.DB, "level", strconv.Itoa(l.Level))
		}
	}

	ops := slices.Sorted(maps.Keys(requests))
	p.family("walfs_store_requests_total", "counter", "Calls to the replica store since start, by operation.")
	for _, op := range ops {
		p.sample("walfs_store_requests_total", float64(requests[op].Calls), "op", op)
	}
	p.family("walfs_store_errors_total", "counter", "Failed calls to the replica store since start, by operation and kind.")
	for _, op := range ops {
		errs := requests[op].Errors
		for _, kind := range slices.Sorted(maps.Keys(errs)) {
			p.sample("walfs_store_errors_total", float64(errs[kind]), "op", op, "kind", kind)
		}
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// promWriter writes metric families in the Prometheus text format.
type promWriter struct{ w io.Writer }

func (p *promWriter) family(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

// sample writes one sample; labels are name, value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabel(labels[i+1]))
		b.WriteByte('"')
	}
	if len(labels) > 0 {
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	b.WriteByte('\n')
	io.WriteString(p.w, b.String())
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
