package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// maxConcurrency caps replica.concurrency. More parallel part uploads than
// this never helps and usually means part-size and concurrency were swapped.
const maxConcurrency = 1024

// field is one key of the file: what a valid value looks like and how to
// parse and store it. set's errors are user-facing and do not name the key;
// the decoder adds key, file and line.
type field[T any] struct {
	key  string
	want string // "a duration such as 1s": used when the value is missing or not a scalar
	set  func(dst *T, s string) error
}

// topFields are the top-level keys other than replica and replicas.
var topFields = index(
	text("data-dir", "a directory path", func(c *Config) *string { return &c.DataDir }),
	text("mount-point", "a directory path", func(c *Config) *string { return &c.MountPoint }),
	text("access-key-id", "an access key ID", func(c *Config) *string { return &c.AccessKeyID }),
	text("secret-access-key", "a secret access key", func(c *Config) *string { return &c.SecretAccessKey }),
	duration("sync-interval", func(c *Config) *Duration { return &c.SyncInterval }),
	oneOf("durability", func(c *Config) *string { return &c.Durability }, "async", "sync"),
	duration("sync-timeout", func(c *Config) *Duration { return &c.SyncTimeout }),
	duration("timeout", func(c *Config) *Duration { return &c.Timeout }),
	oneOf("capture", func(c *Config) *string { return &c.Capture }, "auto", "passthrough", "userspace"),
	oneOf("log-level", func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error"),
	oneOf("log-format", func(c *Config) *string { return &c.LogFormat }, "text", "json"),
	duration("snapshot-interval", func(c *Config) *Duration { return &c.SnapshotInterval }),
	duration("retention", func(c *Config) *Duration { return &c.Retention }),
	oneOf("lease", func(c *Config) *string { return &c.Lease }, "auto", "required", "off"),
	boolean("allow-other", func(c *Config) **bool { return &c.AllowOther }),
	boolean("follow", func(c *Config) **bool { return &c.Follow }),
	duration("poll-interval", func(c *Config) *Duration { return &c.PollInterval }),
	duration("takeover-after", func(c *Config) *Duration { return &c.TakeoverAfter }),
	duration("lease-ttl", func(c *Config) *Duration { return &c.LeaseTTL }),
)

// replicaFields are the keys of a replica block.
var replicaFields = index(
	text("url", "a URL such as s3://bucket/path", func(r *Replica) *string { return &r.URL }),
	oneOf("type", func(r *Replica) *string { return &r.Type }, "s3", "file"),
	text("bucket", "a bucket name", func(r *Replica) *string { return &r.Bucket }),
	text("path", "a path", func(r *Replica) *string { return &r.Path }),
	text("endpoint", "a URL such as http://127.0.0.1:9000", func(r *Replica) *string { return &r.Endpoint }),
	text("region", "a region such as us-east-1", func(r *Replica) *string { return &r.Region }),
	text("access-key-id", "an access key ID", func(r *Replica) *string { return &r.AccessKeyID }),
	text("secret-access-key", "a secret access key", func(r *Replica) *string { return &r.SecretAccessKey }),
	boolean("force-path-style", func(r *Replica) **bool { return &r.ForcePathStyle }),
	boolean("skip-verify", func(r *Replica) **bool { return &r.SkipVerify }),
	size("part-size", func(r *Replica) *Size { return &r.PartSize }),
	count("concurrency", 1, maxConcurrency, func(r *Replica) *int { return &r.Concurrency }),
	boolean("sign-payload", func(r *Replica) **bool { return &r.SignPayload }),
	text("ca-file", "a path to a PEM file", func(r *Replica) *string { return &r.CAFile }),
)

// topKeys and replicaKeys are the known names at each level, sorted, for
// suggestions and "known keys" lists.
var (
	topKeys     = append(names(topFields), "replica", "replicas")
	replicaKeys = names(replicaFields)
)

func init() {
	sort.Strings(topKeys)
}

func index[T any](fs ...field[T]) map[string]field[T] {
	m := make(map[string]field[T], len(fs))
	for _, f := range fs {
		m[f.key] = f
	}
	return m
}

func names[T any](m map[string]field[T]) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// text is a string key. Its value is stored as written (after variable
// expansion) and never echoed in errors, since it may be a secret.
func text[T any](key, want string, p func(*T) *string) field[T] {
	return field[T]{key: key, want: want, set: func(dst *T, s string) error {
		*p(dst) = s
		return nil
	}}
}

// oneOf is an enumerated key; matching is case-insensitive and the stored
// value is lower case.
func oneOf[T any](key string, p func(*T) *string, allowed ...string) field[T] {
	list := strings.Join(allowed, ", ")
	return field[T]{key: key, want: "one of " + list, set: func(dst *T, s string) error {
		v := strings.ToLower(strings.TrimSpace(s))
		for _, a := range allowed {
			if v == a {
				*p(dst) = a
				return nil
			}
		}
		return fmt.Errorf("invalid value %s (allowed: %s)", quote(s), list)
	}}
}

func duration[T any](key string, p func(*T) *Duration) field[T] {
	return field[T]{key: key, want: "a duration such as 1s, 500ms or 24h", set: func(dst *T, s string) error {
		d, err := ParseDuration(s)
		*p(dst) = Duration(d)
		return err
	}}
}

func size[T any](key string, p func(*T) *Size) field[T] {
	return field[T]{key: key, want: "a size such as 5MB, 10MiB or 5242880", set: func(dst *T, s string) error {
		n, err := ParseSize(s)
		*p(dst) = Size(n)
		return err
	}}
}

// boolean accepts YAML's true/false and the YAML 1.1 words Litestream users
// may have (yes/no, on/off), case-insensitively.
func boolean[T any](key string, p func(*T) **bool) field[T] {
	return field[T]{key: key, want: "true or false", set: func(dst *T, s string) error {
		var v bool
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "on":
			v = true
		case "false", "no", "off":
		default:
			return fmt.Errorf("invalid value %s (use true or false)", quote(s))
		}
		*p(dst) = &v
		return nil
	}}
}

func count[T any](key string, lo, hi int, p func(*T) *int) field[T] {
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	return field[T]{key: key, want: want, set: func(dst *T, s string) error {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("invalid value %s (use %s, such as 4)", quote(s), want)
		}
		*p(dst) = n
		return nil
	}}
}

// litestreamHints explain keys a Litestream config has and walfs does not.
var litestreamHints = map[string]string{
	"dbs":      `walfs mounts one directory of databases; put its replica under a top-level "replica:" key`,
	"logging":  "use log-level and log-format",
	"snapshot": "use the top-level keys snapshot-interval and retention",
}

// unknownKey explains an unknown key (name, found under prefix "" or
// "replica.") and suggests the key the user most likely meant.
func unknownKey(prefix, name string) string {
	shown := quote(prefix + name)
	if h, ok := litestreamHints[prefix+name]; ok {
		return fmt.Sprintf("unknown key %s (%s)", shown, h)
	}
	here, there := topKeys, replicaKeys
	if prefix != "" {
		here, there = replicaKeys, topKeys
	}
	norm := normalizeKey(name)
	switch {
	case contains(here, norm):
		return fmt.Sprintf("unknown key %s (did you mean %s?)", shown, quote(prefix+norm))
	case prefix == "" && contains(there, norm):
		return fmt.Sprintf("unknown key %s (%s is a replica setting; indent it under \"replica:\")", shown, norm)
	case prefix == "" && strings.HasPrefix(norm, "replica.") && contains(there, norm[len("replica."):]):
		return fmt.Sprintf("unknown key %s (write it as %s indented under \"replica:\")", shown, quote(norm[len("replica."):]))
	case prefix != "" && contains(there, norm):
		return fmt.Sprintf("unknown key %s (%s is a top-level setting; move it out of the replica block)", shown, norm)
	}
	if best := nearest(norm, here); best != "" {
		return fmt.Sprintf("unknown key %s (did you mean %s?)", shown, quote(prefix+best))
	}
	return fmt.Sprintf("unknown key %s (known keys: %s)", shown, strings.Join(here, ", "))
}

// normalizeKey maps the spellings people carry over from other tools
// (sync_interval, syncInterval, Sync-Interval) to kebab case.
func normalizeKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == ' ':
			c = '-'
		case c >= 'A' && c <= 'Z':
			if i > 0 && (isLower(s[i-1]) || (i+1 < len(s) && isLower(s[i+1]) && isUpper(s[i-1]))) {
				b.WriteByte('-')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// nearest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo: up to one edit per four
// characters, at least one and at most three.
func nearest(s string, candidates []string) string {
	if len(s) > 64 {
		return ""
	}
	limit := min(max(len(s)/4, 1), 3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of adjacent bytes each cost one, so
// "bukcet" is one edit from "bucket".
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// quote quotes s for an error message, cut short so a pasted blob cannot
// flood the terminal, and escaped so the message stays on one line.
func quote(s string) string {
	const maxRunes = 40
	n := 0
	for i := range s {
		if n == maxRunes {
			return strconv.Quote(s[:i] + "…")
		}
		n++
	}
	return strconv.Quote(s)
}
