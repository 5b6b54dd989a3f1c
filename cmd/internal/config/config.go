package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Config is one walfs config file, checked. Zero values mean "not in the
// file"; Set tells a key that was given (even as 0 or "") from one that was
// left out, so the command can let flags override the file.
type Config struct {
	DataDir    string // data-dir: where the real database files live
	MountPoint string // mount-point: where walfs mounts them

	// access-key-id, secret-access-key: credentials for every replica
	// unless the replica sets its own; see Credentials.
	AccessKeyID     string
	SecretAccessKey string

	SyncInterval     Duration // sync-interval: how often captured commits are uploaded
	SyncTimeout      Duration // sync-timeout: how long a sync-durability commit waits for its upload
	Timeout          Duration // timeout: how long unmount waits to flush
	SnapshotInterval Duration // snapshot-interval: how often a full snapshot is uploaded
	Retention        Duration // retention: how long replica history is kept

	Durability string   // durability: "async" or "sync"
	Capture    string   // capture: "auto", "passthrough" or "userspace"
	LogLevel   string   // log-level: "debug", "info", "warn" or "error"
	LogFormat  string   // log-format: "text" or "json"
	Lease      string   // lease: "auto", "required" or "off"
	LeaseTTL   Duration // lease-ttl: how long the lease lasts without renewal

	// Follow (follow) makes the mount a read-only follower of the
	// replica; nil when the file does not say.
	Follow        *bool
	PollInterval  Duration // poll-interval: how often a follower asks the store for news
	TakeoverAfter Duration // takeover-after: a follower promotes itself once the primary's lease has been expired this long

	// AllowOther (allow-other) lets users other than the one running
	// walfs enter the mount; nil when the file does not say.
	AllowOther *bool

	// Replica is the replica block (replica:, or the single entry of
	// replicas:), nil when the file has none.
	Replica *Replica

	// Set holds the dotted keys present in the file: "data-dir",
	// "replica", "replica.part-size". The single entry of replicas: is
	// recorded the same way, as "replica" and "replica.<key>". Never nil
	// after Parse.
	Set map[string]bool
}

// Replica is where a mount replicates to: a url, or type with bucket/path
// and the S3 settings. Pointer bools are nil when the file does not set them,
// because false and "provider default" differ (sign-payload, path style).
type Replica struct {
	URL             string // url: s3://bucket/path?endpoint=… or file:///dir
	Type            string // type: "s3" or "file"
	Bucket          string // bucket: S3 bucket name
	Path            string // path: key prefix in the bucket, or the directory for type file
	Endpoint        string // endpoint: S3 endpoint URL for non-AWS stores
	Region          string // region: S3 region
	AccessKeyID     string // access-key-id: overrides the top-level one
	SecretAccessKey string // secret-access-key: overrides the top-level one
	CAFile          string // ca-file: PEM file of extra CAs for the endpoint

	ForcePathStyle *bool // force-path-style: bucket in the path, not the host name
	SkipVerify     *bool // skip-verify: do not check the endpoint's TLS certificate
	SignPayload    *bool // sign-payload: sign request bodies instead of UNSIGNED-PAYLOAD

	PartSize    Size // part-size: multipart upload part size
	Concurrency int  // concurrency: parallel part uploads, 1..maxConcurrency
}

// maxFileSize bounds what Load reads. Real configs are a few hundred bytes;
// anything this big is the wrong file (or /dev/zero) and must not hang walfs.
const maxFileSize = 1 << 20

// Load reads the config file at path, expands environment variables, and
// parses and checks it. Errors are *Error, one line each; a missing file
// matches fs.ErrNotExist.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// readFile reads at most maxFileSize+1 bytes and turns os errors into
// messages that tell the user what to check.
func readFile(path string) ([]byte, error) {
	fail := func(err error, msg string) error {
		return &Error{File: path, Msg: msg, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fail(err, "no such file (check the --config path)")
		case errors.Is(err, fs.ErrPermission):
			return nil, fail(err, "permission denied (check the file's owner and mode, and the user walfs runs as)")
		}
		return nil, fail(err, fmt.Sprintf("cannot open: %v (check the --config path)", unwrapPath(err)))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fail(fs.ErrInvalid, "is a directory (--config takes the path of a YAML file)")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fail(err, fmt.Sprintf("cannot read: %v (check the --config path)", unwrapPath(err)))
	}
	if len(data) > maxFileSize {
		return nil, fail(ErrTooLarge, "larger than 1 MiB, which no walfs config is (check the --config path)")
	}
	return data, nil
}

// unwrapPath drops the "open <path>:" prefix of an os error; the message
// names the file already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses and checks a config file's contents. source names the file
// in errors ("walfs.yml"); "" reads as "config". Environment variables are
// looked up with os.LookupEnv.
func Parse(data []byte, source string) (*Config, error) {
	return parse(data, source, os.LookupEnv)
}

// Credentials returns the access key pair the replica should use: each of
// the replica's own values, or the top-level one where the replica sets
// none (as Litestream does).
func (c *Config) Credentials() (accessKeyID, secretAccessKey string) {
	accessKeyID, secretAccessKey = c.AccessKeyID, c.SecretAccessKey
	if r := c.Replica; r != nil {
		if r.AccessKeyID != "" {
			accessKeyID = r.AccessKeyID
		}
		if r.SecretAccessKey != "" {
			secretAccessKey = r.SecretAccessKey
		}
	}
	return accessKeyID, secretAccessKey
}
