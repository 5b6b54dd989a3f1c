package config

import (
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// redacted replaces secret values in String output.
const redacted = "REDACTED"

// String describes the config for logs as "key=value" pairs in a fixed
// order, listing keys that are set or non-zero. The
// secret access keys are replaced by REDACTED, access key IDs show only
// their last four characters, and secrets in the replica URL (password,
// signature or token query parameters) are replaced too.
//
// String, GoString and LogValue have value receivers so that printing a
// Config, not only a *Config, cannot leak a secret.
func (c Config) String() string {
	w := kvWriter{set: c.Set}
	w.add("data-dir", c.DataDir)
	w.add("mount-point", c.MountPoint)
	w.add("access-key-id", maskID(c.AccessKeyID))
	w.add("secret-access-key", redact(c.SecretAccessKey))
	w.duration("sync-interval", c.SyncInterval)
	w.add("durability", c.Durability)
	w.duration("sync-timeout", c.SyncTimeout)
	w.duration("timeout", c.Timeout)
	w.add("capture", c.Capture)
	w.add("log-level", c.LogLevel)
	w.add("log-format", c.LogFormat)
	w.duration("snapshot-interval", c.SnapshotInterval)
	w.duration("retention", c.Retention)
	w.add("lease", c.Lease)
	if c.Replica != nil {
		c.Replica.write(&w, "replica.")
	}
	return w.String()
}

// GoString makes %#v as safe as %v.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

// LogValue implements slog.LogValuer, so slog.Any("config", cfg) is
// redacted with every handler, JSON included.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String describes the replica like Config.String, keys without the
// "replica." prefix, secrets redacted.
func (r Replica) String() string {
	var w kvWriter
	r.write(&w, "")
	return w.String()
}

// GoString makes %#v as safe as %v.
func (r Replica) GoString() string { return "config.Replica{" + r.String() + "}" }

// LogValue implements slog.LogValuer.
func (r Replica) LogValue() slog.Value { return slog.StringValue(r.String()) }

func (r Replica) write(w *kvWriter, prefix string) {
	w.add(prefix+"url", redactURL(r.URL))
	w.add(prefix+"type", r.Type)
	w.add(prefix+"bucket", r.Bucket)
	w.add(prefix+"path", r.Path)
	w.add(prefix+"endpoint", redactURL(r.Endpoint))
	w.add(prefix+"region", r.Region)
	w.add(prefix+"access-key-id", maskID(r.AccessKeyID))
	w.add(prefix+"secret-access-key", redact(r.SecretAccessKey))
	w.add(prefix+"force-path-style", boolText(r.ForcePathStyle))
	w.add(prefix+"skip-verify", boolText(r.SkipVerify))
	if r.PartSize != 0 || w.set[prefix+"part-size"] {
		w.add(prefix+"part-size", r.PartSize.String())
	}
	if r.Concurrency != 0 || w.set[prefix+"concurrency"] {
		w.add(prefix+"concurrency", strconv.Itoa(r.Concurrency))
	}
	w.add(prefix+"sign-payload", boolText(r.SignPayload))
	w.add(prefix+"ca-file", r.CAFile)
}

// kvWriter builds "k=v k2=v2"; a pair is written when its value is
// non-empty or its key was set in the file.
type kvWriter struct {
	b   strings.Builder
	set map[string]bool
}

func (w *kvWriter) add(key, value string) {
	if value == "" && !w.set[key] {
		return
	}
	if w.b.Len() > 0 {
		w.b.WriteByte(' ')
	}
	w.b.WriteString(key)
	w.b.WriteByte('=')
	if value == "" || strings.ContainsAny(value, " \"=\\") || strconv.Quote(value) != `"`+value+`"` {
		value = strconv.Quote(value)
	}
	w.b.WriteString(value)
}

func (w *kvWriter) String() string { return w.b.String() }

// duration adds a duration that is non-zero or set (0s can be a choice).
func (w *kvWriter) duration(key string, d Duration) {
	if d != 0 || w.set[key] {
		w.add(key, d.String())
	}
}

func boolText(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

// maskID keeps the last four characters of an access key ID: enough to
// tell two keys apart in a log, too little to use. Short IDs are hidden.
func maskID(id string) string {
	if len(id) < 12 {
		return redact(id)
	}
	return "****" + id[len(id)-4:]
}

// redactURL hides the password and any secret-looking query parameter of a
// URL. A URL that does not parse is hidden whole: there is no telling
// which part of it is secret.
func redactURL(s string) string {
	if s == "" || !strings.ContainsAny(s, "@?") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return redacted
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = redacted
		} else {
			hidden := false
			for k := range q {
				if sensitiveParam(k) {
					q[k] = []string{redacted}
					hidden = true
				}
			}
			if hidden {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}

// sensitiveParam reports whether a URL query parameter may carry a secret
// (secret-access-key, X-Amz-Signature, X-Amz-Security-Token, password=…).
func sensitiveParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"secret", "password", "passwd", "token", "signature", "credential", "sig", "key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
