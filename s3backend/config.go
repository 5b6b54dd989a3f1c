package s3backend

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/walfs/walfs/providers"
)

// Config holds the replica settings as users write them (YAML keys and flags
// use Litestream's names and meanings). Explicit fields win over the URL.
type Config struct {
	// URL is file:///abs/path, /abs/path, or
	// s3://bucket/path?endpoint=&region=&force-path-style=&skip-verify=&sign-payload=&ca-file=
	URL string

	Type            string // "file" or "s3"; inferred from URL or Bucket when empty
	Bucket          string
	Path            string // directory for file, key prefix for s3
	Endpoint        string // host[:port] (https assumed) or URL; empty for AWS
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	CAFile          string // PEM bundle to trust in addition to the system roots

	ForcePathStyle, SkipVerify, SignPayload *bool // nil = not set (provider default)

	PartSize    int64 // multipart part size in bytes (0 = 5 MiB)
	Concurrency int   // parts in flight per upload (0 = provider default)
}

// Environment variables for credentials, checked after explicit settings and
// before the AWS ones.
const (
	EnvAccessKeyID     = "WALFS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "WALFS_SECRET_ACCESS_KEY"
)

// String describes the config for logs with secrets redacted.
func (c Config) String() string {
	var b strings.Builder
	if c.URL != "" {
		b.WriteString(redactURL(c.URL))
	}
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + v)
	}
	addBool := func(k string, v *bool) {
		if v != nil {
			add(k, strconv.FormatBool(*v))
		}
	}
	add("type", c.Type)
	add("bucket", c.Bucket)
	add("path", c.Path)
	add("endpoint", c.Endpoint)
	add("region", c.Region)
	if c.AccessKeyID != "" {
		add("access-key-id", redactKeyID(c.AccessKeyID))
	}
	if c.SecretAccessKey != "" {
		add("secret-access-key", "REDACTED")
	}
	add("ca-file", c.CAFile)
	addBool("force-path-style", c.ForcePathStyle)
	addBool("skip-verify", c.SkipVerify)
	addBool("sign-payload", c.SignPayload)
	if c.PartSize != 0 {
		add("part-size", strconv.FormatInt(c.PartSize, 10))
	}
	if c.Concurrency != 0 {
		add("concurrency", strconv.Itoa(c.Concurrency))
	}
	return b.String()
}

// redactKeyID keeps the first four characters (the key type, like AKIA) so
// logs still tell keys apart by kind without revealing them.
func redactKeyID(id string) string {
	if len(id) <= 4 {
		return "REDACTED"
	}
	return id[:4] + "…REDACTED"
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "(unparsable URL, redacted)"
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	q, redacted := u.Query(), false
	for k := range q {
		if lk := strings.ToLower(k); strings.Contains(lk, "secret") || strings.Contains(lk, "key") || strings.Contains(lk, "token") {
			q.Set(k, "REDACTED")
			redacted = true
		}
	}
	if redacted {
		// Re-encoding escapes every endpoint=http://…; only pay that
		// price when something had to go.
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// urlParams are the query parameters accepted on s3:// URLs.
var urlParams = []string{"endpoint", "region", "force-path-style", "skip-verify", "sign-payload", "ca-file"}

// resolved is a Config after URL parsing and validation.
type resolved struct {
	typ                  string
	bucket, path         string
	endpoint, region     string
	caFile               string
	forcePathStyle       *bool
	skipVerify           *bool
	signPayload          *bool
	accessKey, secretKey string
	// src says where each set value came from: SourceURL or SourceConfig,
	// keyed by setting name ("bucket", "region", ...).
	src map[string]Source
}

// resolve merges the URL into the explicit fields (explicit wins) and checks
// everything that can be checked without the network.
func (c Config) resolve() (resolved, error) {
	var r resolved
	if c.URL != "" {
		if err := r.parseURL(c.URL); err != nil {
			return resolved{}, err
		}
	}
	if c.Type != "" {
		t := strings.ToLower(c.Type)
		if r.typ != "" && r.typ != t {
			return resolved{}, configErr(fmt.Sprintf("type %q conflicts with url scheme %q", c.Type, r.typ), "drop type or make it match the URL")
		}
		r.typ = t
	}
	r.src = map[string]Source{}
	str := func(name, explicit string, v *string) {
		switch {
		case explicit != "":
			*v, r.src[name] = explicit, SourceConfig
		case *v != "":
			r.src[name] = SourceURL
		}
	}
	boolean := func(name string, explicit *bool, v **bool) {
		switch {
		case explicit != nil:
			*v, r.src[name] = explicit, SourceConfig
		case *v != nil:
			r.src[name] = SourceURL
		}
	}
	str("bucket", c.Bucket, &r.bucket)
	str("path", c.Path, &r.path)
	str("endpoint", c.Endpoint, &r.endpoint)
	str("region", c.Region, &r.region)
	str("ca-file", c.CAFile, &r.caFile)
	boolean("force-path-style", c.ForcePathStyle, &r.forcePathStyle)
	boolean("skip-verify", c.SkipVerify, &r.skipVerify)
	boolean("sign-payload", c.SignPayload, &r.signPayload)
	r.accessKey, r.secretKey = c.AccessKeyID, c.SecretAccessKey
	if r.typ == "" {
		switch {
		case r.bucket != "":
			r.typ = "s3"
		case r.path != "":
			r.typ = "file"
		default:
			return resolved{}, configErr("no replica configured", "set url (s3://bucket/path or /abs/path) or type with bucket or path")
		}
	}
	switch r.typ {
	case "file":
		if r.path == "" {
			return resolved{}, configErr("file replica has no path", "set path or url to an absolute directory like /var/lib/walfs/replica")
		}
		if !filepath.IsAbs(r.path) {
			return resolved{}, configErr(fmt.Sprintf("file replica path %q is not absolute", r.path), "use an absolute path like /var/lib/walfs/replica or file:///var/lib/walfs/replica")
		}
		if r.bucket != "" || r.endpoint != "" {
			return resolved{}, configErr("file replica does not take bucket or endpoint", "use type: s3 for object stores")
		}
	case "s3":
		if r.bucket == "" {
			return resolved{}, configErr("s3 replica has no bucket", "set bucket, or use a URL like s3://bucket/path")
		}
	default:
		return resolved{}, unknownType(r.typ)
	}
	if (r.accessKey == "") != (r.secretKey == "") {
		return resolved{}, configErr("only one of access-key-id and secret-access-key is set", "set both, or neither to use WALFS_/AWS_ environment variables")
	}
	if c.PartSize < 0 || (c.PartSize > 0 && c.PartSize < providers.MiB*5) {
		return resolved{}, configErr(fmt.Sprintf("part-size %d is below the 5 MiB S3 multipart minimum", c.PartSize), "set part-size to at least 5242880 or leave it unset")
	}
	if c.Concurrency < 0 {
		return resolved{}, configErr(fmt.Sprintf("concurrency %d is negative", c.Concurrency), "set concurrency to 1 or more, or leave it unset")
	}
	return r, nil
}

func (r *resolved) parseURL(raw string) error {
	if strings.HasPrefix(raw, "/") {
		r.typ, r.path = "file", filepath.Clean(raw)
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, which may hold credentials: say what
		// is wrong without echoing it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return configErr(fmt.Sprintf("replica url is malformed: %v", err), "use s3://bucket/path?endpoint=host:port or file:///abs/path (escape % as %25)")
	}
	switch strings.ToLower(u.Scheme) {
	case "":
		return configErr(fmt.Sprintf("replica url %q has no scheme and is not an absolute path", raw), "use s3://bucket/path or an absolute path like /var/lib/walfs/replica")
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return configErr(fmt.Sprintf("file url %q has host %q", redactURL(raw), u.Host), "file URLs need three slashes: file:///abs/path")
		}
		if u.RawQuery != "" {
			return configErr("file url takes no query parameters", "remove everything after '?'")
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return configErr(fmt.Sprintf("file url %q has no absolute path", raw), "use file:///abs/path")
		}
		r.typ, r.path = "file", filepath.Clean(u.Path)
		return nil
	case "s3":
		if u.User != nil {
			return configErr("s3 url must not carry credentials", "remove user:password@ and set access-key-id/secret-access-key or WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY")
		}
		if u.Host == "" {
			return configErr(fmt.Sprintf("s3 url %q has no bucket", raw), "use s3://bucket/path")
		}
		r.typ, r.bucket, r.path = "s3", u.Host, strings.Trim(u.Path, "/")
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			// u.Query() would silently drop the bad parameter (and with it,
			// say, the endpoint, sending data to AWS instead). Name the
			// parameter; the escape error quotes only the bad sequence.
			msg := "s3 url parameters are malformed"
			for _, kv := range strings.Split(u.RawQuery, "&") {
				k, v, _ := strings.Cut(kv, "=")
				if _, verr := url.QueryUnescape(v); verr != nil {
					msg = fmt.Sprintf("s3 url parameter %s: %v", k, verr)
					break
				}
			}
			return configErr(msg, "escape special characters in values (% as %25, & as %26)")
		}
		for k := range q {
			if !slices.Contains(urlParams, k) {
				return configErr(fmt.Sprintf("unknown s3 url parameter %q", k), "known parameters: "+strings.Join(urlParams, ", "))
			}
		}
		r.endpoint, r.region, r.caFile = q.Get("endpoint"), q.Get("region"), q.Get("ca-file")
		for _, b := range []struct {
			name string
			dst  **bool
		}{{"force-path-style", &r.forcePathStyle}, {"skip-verify", &r.skipVerify}, {"sign-payload", &r.signPayload}} {
			if !q.Has(b.name) {
				continue
			}
			v, err := strconv.ParseBool(q.Get(b.name))
			if err != nil {
				return configErr(fmt.Sprintf("s3 url parameter %s=%q is not a boolean", b.name, q.Get(b.name)), "use true or false")
			}
			*b.dst = &v
		}
		return nil
	default:
		return unknownType(u.Scheme)
	}
}

func unknownType(t string) error {
	hint := "walfs replicates to file:///abs/path or s3://bucket/path (any S3-compatible store via ?endpoint=)"
	switch strings.ToLower(t) {
	case "gs", "gcs":
		hint = "use Google Cloud Storage's S3 interoperability: s3://bucket/path?endpoint=storage.googleapis.com with HMAC keys"
	case "abs", "azure":
		hint = "Azure Blob Storage has no S3 API; replicate to a file path and sync it, or use an S3-compatible gateway"
	case "http", "https":
		hint = "put the server in the endpoint parameter: s3://bucket/path?endpoint=" + t + "://host:port"
	}
	return configErr(fmt.Sprintf("unsupported replica type %q", t), hint)
}

func configErr(msg, hint string) error {
	return withHint(fmt.Errorf("%w: %s", ErrInvalidConfig, msg), hint)
}

// normalizeEndpoint adds https:// to a bare host and strips a trailing slash.
func normalizeEndpoint(e string) (string, error) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", nil
	}
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" {
		return "", configErr("endpoint is not a host or URL", "use host[:port] or https://host[:port]")
	}
	if u.User != nil {
		return "", configErr("endpoint must not carry credentials", "remove user:password@ from the endpoint and set access-key-id/secret-access-key or WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", configErr(fmt.Sprintf("endpoint scheme %q", u.Scheme), "use http:// or https:// (https is assumed without a scheme)")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
