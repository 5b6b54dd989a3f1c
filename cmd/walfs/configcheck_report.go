package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/walfs/walfs/s3backend"
)

// Sources as `walfs config check` names them. The URL's settings belong to
// whoever gave the URL: the user (--replica, WALFS_REPLICA_URL), the config
// file, or the default.
const (
	sourceUser   s3backend.Source = "user"
	sourceConfig s3backend.Source = "config"
)

// checkReport is what `walfs config check` prints; its JSON form is the
// --json output.
type checkReport struct {
	ConfigFile  string      `json:"config_file,omitempty"`
	Replica     string      `json:"replica"`      // the replica settings, secrets redacted
	ReplicaFrom string      `json:"replica_from"` // --replica, WALFS_REPLICA_URL, config or default
	Access      mountAccess `json:"mount_access"` // who may enter the mount
	AccessWho   string      `json:"-"`            // depends on who runs the check
	s3backend.Resolved
	Probe *probeReport `json:"probe,omitempty"`
}

// probeReport is the --probe part of the report.
type probeReport struct {
	Store string `json:"store"`
	s3backend.ProbeResult
}

func newCheckReport(rep checkedReplica, res s3backend.Resolved) *checkReport {
	urlSource := sourceUser
	switch rep.urlFrom {
	case "config":
		urlSource = sourceConfig
	case "default":
		urlSource = s3backend.SourceDefault
	}
	desc := rep.cfg
	desc.AccessKeyID, desc.SecretAccessKey = "", "" // shown as set/not set below, never in part
	r := &checkReport{ConfigFile: rep.configFile, Replica: desc.String(), ReplicaFrom: rep.urlFrom, Resolved: res,
		Access: rep.access, AccessWho: rep.access.who(os.Geteuid())}
	relabel := func(s *s3backend.Source) {
		switch *s {
		case s3backend.SourceURL:
			*s = urlSource
		case s3backend.SourceConfig:
			*s = sourceConfig
		}
	}
	x := &r.Resolved
	for _, s := range []*s3backend.Source{
		&x.Path.Source, &x.Bucket.Source, &x.Provider.Source, &x.Endpoint.Source, &x.Region.Source,
		&x.ForcePathStyle.Source, &x.SignPayload.Source, &x.SkipVerify.Source, &x.CAFile.Source,
		&x.PartSize.Source, &x.Concurrency.Source, &x.Headers.Source, &x.Checksum.Source,
		&x.RequestsPerSecond.Source, &x.ConditionalWrites.Source,
		&x.Credentials.AccessKeyID.Source, &x.Credentials.SecretAccessKey.Source,
	} {
		relabel(s)
	}
	return r
}

// print writes the report as a table for people.
func (r *checkReport) print(w io.Writer) error {
	fmt.Fprintf(w, "replica: %s (from %s)\n", r.Replica, r.ReplicaFrom)
	if r.ConfigFile != "" {
		fmt.Fprintf(w, "config file: %s\n", r.ConfigFile)
	}
	fmt.Fprintf(w, "mount access: %s (from %s)\n", r.AccessWho, r.Access.From)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value string, src s3backend.Source, why string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, value, src, why)
	}
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE\tWHY")
	x := r.Resolved
	row("type", x.Type, "", "")
	if x.Type == "file" {
		row("path", x.Path.Value, x.Path.Source, x.Path.Why)
		return finish(tw, w, r)
	}
	row("provider", x.Provider.Value, x.Provider.Source, x.Provider.Why)
	row("endpoint", x.Endpoint.Value, x.Endpoint.Source, x.Endpoint.Why)
	row("bucket", x.Bucket.Value, x.Bucket.Source, x.Bucket.Why)
	row("path", orNone(x.Path.Value), x.Path.Source, x.Path.Why)
	row("region", x.Region.Value, x.Region.Source, x.Region.Why)
	row("force-path-style", strconv.FormatBool(x.ForcePathStyle.Value), x.ForcePathStyle.Source, x.ForcePathStyle.Why)
	row("sign-payload", strconv.FormatBool(x.SignPayload.Value), x.SignPayload.Source, x.SignPayload.Why)
	row("skip-verify", strconv.FormatBool(x.SkipVerify.Value), x.SkipVerify.Source, x.SkipVerify.Why)
	row("ca-file", orNone(x.CAFile.Value), x.CAFile.Source, x.CAFile.Why)
	row("part-size", fmt.Sprintf("%s (%d)", humanBytes(x.PartSize.Value), x.PartSize.Value), x.PartSize.Source, x.PartSize.Why)
	row("concurrency", strconv.Itoa(x.Concurrency.Value), x.Concurrency.Source, x.Concurrency.Why)
	row("headers", orNone(strings.Join(x.Headers.Value, ", ")), x.Headers.Source, x.Headers.Why)
	row("checksum", string(x.Checksum.Value), x.Checksum.Source, x.Checksum.Why)
	rps := "no cap"
	if x.RequestsPerSecond.Value > 0 {
		rps = fmt.Sprintf("%g/s", x.RequestsPerSecond.Value)
	}
	row("request-rate", rps, x.RequestsPerSecond.Source, x.RequestsPerSecond.Why)
	row("conditional-writes", string(x.ConditionalWrites.Value), x.ConditionalWrites.Source, x.ConditionalWrites.Why+" (--probe measures it)")
	for _, c := range []struct {
		name string
		c    s3backend.Credential
	}{{"access-key-id", x.Credentials.AccessKeyID}, {"secret-access-key", x.Credentials.SecretAccessKey}} {
		value := "set"
		if !c.c.Set {
			value = "not set"
		}
		row(c.name, value, c.c.Source, c.c.From)
	}
	if x.Credentials.SessionToken {
		row("session-token", "set", s3backend.SourceEnv, "AWS_SESSION_TOKEN")
	}
	return finish(tw, w, r)
}

// finish flushes the table and prints warnings and the probe.
func finish(tw *tabwriter.Writer, w io.Writer, r *checkReport) error {
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if r.Probe == nil {
		return nil
	}
	fmt.Fprintf(w, "\nprobe of %s:\n", r.Probe.Store)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Probe.Steps {
		status := "ok"
		if !s.OK {
			status = "FAILED: " + s.Error
		}
		fmt.Fprintf(tw, "  %s\t%dms\t%s\n", s.Name, s.Millis, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cw := r.Probe.ConditionalWrites; cw != nil {
		fmt.Fprintf(w, "conditional writes: %s\n", cw.Detail)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
