package config

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullExample is the documented config shape, every key set.
const fullExample = `data-dir: /var/lib/walfs
mount-point: /mnt/db
access-key-id: ${AWS_ACCESS_KEY_ID}      # top-level credentials apply to every replica
secret-access-key: $SECRET
sync-interval: 1s
durability: async            # async | sync
sync-timeout: 10s
timeout: 30s                 # unmount/flush timeout
capture: auto                # auto | passthrough | userspace
log-level: info              # debug | info | warn | error
log-format: text             # text | json
snapshot-interval: 24h
retention: 24h
lease: auto                  # auto | required | off
replica:
  type: s3                   # s3 | file
  bucket: b
  path: p
  endpoint: http://127.0.0.1:9000
  region: us-east-1
  access-key-id: replica-key-id-0001
  secret-access-key: ${SECRET}
  force-path-style: true
  skip-verify: false
  part-size: 5MB             # accepts 5MB, 10MiB, 5242880
  concurrency: 4
  sign-payload: true
  ca-file: /etc/ssl/my-ca.pem
`

func TestParseFullExample(t *testing.T) {
	got, err := parse([]byte(fullExample), "walfs.yml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DataDir:          "/var/lib/walfs",
		MountPoint:       "/mnt/db",
		AccessKeyID:      "AKIAIOSFODNN7EXAMPLE",
		SecretAccessKey:  testSecret,
		SyncInterval:     Duration(time.Second),
		SyncTimeout:      Duration(10 * time.Second),
		Timeout:          Duration(30 * time.Second),
		SnapshotInterval: Duration(24 * time.Hour),
		Retention:        Duration(24 * time.Hour),
		Durability:       "async",
		Capture:          "auto",
		LogLevel:         "info",
		LogFormat:        "text",
		Lease:            "auto",
		Replica: &Replica{
			Type:            "s3",
			Bucket:          "b",
			Path:            "p",
			Endpoint:        "http://127.0.0.1:9000",
			Region:          "us-east-1",
			AccessKeyID:     "replica-key-id-0001",
			SecretAccessKey: testSecret,
			CAFile:          "/etc/ssl/my-ca.pem",
			ForcePathStyle:  ptr(true),
			SkipVerify:      ptr(false),
			SignPayload:     ptr(true),
			PartSize:        5_000_000,
			Concurrency:     4,
		},
		Set: set("data-dir", "mount-point", "access-key-id", "secret-access-key", "sync-interval",
			"durability", "sync-timeout", "timeout", "capture", "log-level", "log-format",
			"snapshot-interval", "retention", "lease", "replica", "replica.type", "replica.bucket",
			"replica.path", "replica.endpoint", "replica.region", "replica.access-key-id",
			"replica.secret-access-key", "replica.force-path-style", "replica.skip-verify",
			"replica.part-size", "replica.concurrency", "replica.sign-payload", "replica.ca-file"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", *got, *want)
		if !reflect.DeepEqual(got.Replica, want.Replica) {
			t.Errorf("replica: got %+v, want %+v", *got.Replica, *want.Replica)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Config
	}{
		{"empty file", "", Config{Set: set()}},
		{"only comments", "# walfs config\n\n# data-dir: /x\n", Config{Set: set()}},
		{"lone document marker", "---\n", Config{Set: set()}},
		{"null document", "~\n", Config{Set: set()}},
		{"byte order mark", "\ufeffdata-dir: /d\n", Config{DataDir: "/d", Set: set("data-dir")}},
		{"CRLF line ends", "data-dir: /d\r\nmount-point: /m\r\n", Config{DataDir: "/d", MountPoint: "/m", Set: set("data-dir", "mount-point")}},
		{"replica url", "replica:\n  url: s3://bucket/path?endpoint=http://127.0.0.1:9000\n",
			Config{Replica: &Replica{URL: "s3://bucket/path?endpoint=http://127.0.0.1:9000"}, Set: set("replica", "replica.url")}},
		{"replicas list of one", "replicas:\n  - url: s3://b/p\n    part-size: 10MiB\n",
			Config{Replica: &Replica{URL: "s3://b/p", PartSize: 10 << 20}, Set: set("replica", "replica.url", "replica.part-size")}},
		{"flow style replica", "replica: {type: file, path: /backups}\n",
			Config{Replica: &Replica{Type: "file", Path: "/backups"}, Set: set("replica", "replica.type", "replica.path")}},
		{"enums are case-insensitive", "durability: SYNC\ncapture: PassThrough\nlog-level: Warn\nlog-format: JSON\nlease: Off\n",
			Config{Durability: "sync", Capture: "passthrough", LogLevel: "warn", LogFormat: "json", Lease: "off",
				Set: set("durability", "capture", "log-level", "log-format", "lease")}},
		{"YAML 1.1 booleans", "replica:\n  force-path-style: yes\n  skip-verify: off\n  sign-payload: FALSE\n",
			Config{Replica: &Replica{ForcePathStyle: ptr(true), SkipVerify: ptr(false), SignPayload: ptr(false)},
				Set: set("replica", "replica.force-path-style", "replica.skip-verify", "replica.sign-payload")}},
		{"allow-other", "allow-other: true\n", Config{AllowOther: ptr(true), Set: set("allow-other")}},
		{"follower", "follow: true\npoll-interval: 250ms\ntakeover-after: 1m\nlease-ttl: 12s\n",
			Config{Follow: ptr(true), PollInterval: Duration(250 * time.Millisecond), TakeoverAfter: Duration(time.Minute), LeaseTTL: Duration(12 * time.Second),
				Set: set("follow", "poll-interval", "takeover-after", "lease-ttl")}},
		{"part-size in bytes", "replica:\n  part-size: 5242880\n",
			Config{Replica: &Replica{PartSize: 5 << 20}, Set: set("replica", "replica.part-size")}},
		{"part-size fractional", "replica:\n  part-size: 1.5GB\n",
			Config{Replica: &Replica{PartSize: 1_500_000_000}, Set: set("replica", "replica.part-size")}},
		{"zero duration is set", "sync-interval: 0\nretention: 0s\n",
			Config{Set: set("sync-interval", "retention")}},
		{"compound duration", "snapshot-interval: 1h30m\n",
			Config{SnapshotInterval: Duration(90 * time.Minute), Set: set("snapshot-interval")}},
		{"variables in typed values", "durability: $MODE\nreplica:\n  concurrency: ${N}\n  bucket: $BUCKET\n",
			Config{Durability: "sync", Replica: &Replica{Concurrency: 8, Bucket: "my-bucket"},
				Set: set("durability", "replica", "replica.concurrency", "replica.bucket")}},
		{"variable set to empty", "access-key-id: ${EMPTY}\nsecret-access-key: $EMPTY\n",
			Config{Set: set("access-key-id", "secret-access-key")}},
		{"variable inside a value", "data-dir: ${HOME}/walfs\nmount-point: $HOME/mnt\n",
			Config{DataDir: "/home/walfs/walfs", MountPoint: "/home/walfs/mnt", Set: set("data-dir", "mount-point")}},
		{"dollar escapes", "data-dir: /a$$b/$$HOME/c$\nmount-point: '$1 $ $-'\n",
			Config{DataDir: "/a$b/$HOME/c$", MountPoint: "$1 $ $-", Set: set("data-dir", "mount-point")}},
		{"value from env is not YAML", "secret-access-key: $WEIRD\n",
			Config{SecretAccessKey: "a #b: *c !d '\"{[", Set: set("secret-access-key")}},
		{"unset variable in a comment is fine", "# access-key-id: $NOT_SET\ndata-dir: /d # $ALSO_NOT_SET\n",
			Config{DataDir: "/d", Set: set("data-dir")}},
		{"quoted values", "data-dir: \"/a #b\"\nmount-point: '/m: x'\n",
			Config{DataDir: "/a #b", MountPoint: "/m: x", Set: set("data-dir", "mount-point")}},
		{"anchors and aliases", "data-dir: &dir /srv\nmount-point: *dir\n",
			Config{DataDir: "/srv", MountPoint: "/srv", Set: set("data-dir", "mount-point")}},
		{"number as string", "replica:\n  bucket: 2024\n",
			Config{Replica: &Replica{Bucket: "2024"}, Set: set("replica", "replica.bucket")}},
		{"explicit str tag", "replica:\n  region: !!str 1\n",
			Config{Replica: &Replica{Region: "1"}, Set: set("replica", "replica.region")}},
		{"url and type agree", "replica:\n  url: S3://b/p\n  type: s3\n",
			Config{Replica: &Replica{URL: "S3://b/p", Type: "s3"}, Set: set("replica", "replica.url", "replica.type")}},
		{"url and empty bucket", "replica:\n  url: s3://b/p\n  bucket: $EMPTY\n",
			Config{Replica: &Replica{URL: "s3://b/p"}, Set: set("replica", "replica.url", "replica.bucket")}},
		{"url without scheme", "replica:\n  url: /backups/db\n",
			Config{Replica: &Replica{URL: "/backups/db"}, Set: set("replica", "replica.url")}},
		{"document end marker", "data-dir: /d\n...\n", Config{DataDir: "/d", Set: set("data-dir")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.in), "walfs.yml", testEnv)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", *got, tt.want)
				if got.Replica != nil && tt.want.Replica != nil {
					t.Errorf("replica: got %+v, want %+v", *got.Replica, *tt.want.Replica)
				}
			}
		})
	}
}

// errorTests cover every rule; want is the whole message the user sees.
var errorTests = []struct {
	name string
	in   string
	want string
	is   error
}{
	// Unknown keys.
	{"typo", "data-dir: /d\nmount-point: /m\nsync-intervall: 1s\n",
		`walfs.yml:3: unknown key "sync-intervall" (did you mean "sync-interval"?)`, ErrUnknownKey},
	{"swapped letters", "retnetion: 1h\n", `walfs.yml:1: unknown key "retnetion" (did you mean "retention"?)`, ErrUnknownKey},
	{"snake case", "sync_timeout: 1s\n", `walfs.yml:1: unknown key "sync_timeout" (did you mean "sync-timeout"?)`, ErrUnknownKey},
	{"camel case", "replica:\n  forcePathStyle: true\n",
		`walfs.yml:2: unknown key "replica.forcePathStyle" (did you mean "replica.force-path-style"?)`, ErrUnknownKey},
	{"replica typo", "replica:\n  bukcet: b\n", `walfs.yml:2: unknown key "replica.bukcet" (did you mean "replica.bucket"?)`, ErrUnknownKey},
	{"replica key at top level", "bucket: b\n",
		`walfs.yml:1: unknown key "bucket" (bucket is a replica setting; indent it under "replica:")`, ErrUnknownKey},
	{"top-level key in replica", "replica:\n  url: s3://b/p\n  sync-interval: 1s\n",
		`walfs.yml:3: unknown key "replica.sync-interval" (sync-interval is a top-level setting; move it out of the replica block)`, ErrUnknownKey},
	{"dotted key", "replica.url: s3://b/p\n",
		`walfs.yml:1: unknown key "replica.url" (write it as "url" indented under "replica:")`, ErrUnknownKey},
	{"litestream dbs", "dbs:\n  - path: /db\n",
		`walfs.yml:1: unknown key "dbs" (walfs mounts one directory of databases; put its replica under a top-level "replica:" key)`, ErrUnknownKey},
	{"litestream snapshot block", "snapshot:\n  interval: 24h\n",
		`walfs.yml:1: unknown key "snapshot" (use the top-level keys snapshot-interval and retention)`, ErrUnknownKey},
	{"litestream logging block", "logging:\n  level: debug\n",
		`walfs.yml:1: unknown key "logging" (use log-level and log-format)`, ErrUnknownKey},
	{"nothing close", "replica:\n  colour: blue\n",
		`walfs.yml:2: unknown key "replica.colour" (known keys: access-key-id, bucket, ca-file, concurrency, endpoint, force-path-style, part-size, path, region, secret-access-key, sign-payload, skip-verify, type, url)`, ErrUnknownKey},

	// Wrong values.
	{"size garbage", "replica:\n  part-size: lots\n",
		`walfs.yml:2: replica.part-size: invalid size "lots" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`, ErrInvalidValue},
	{"size negative", "replica:\n  part-size: -5MB\n",
		`walfs.yml:2: replica.part-size: size "-5MB" is negative (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`, ErrInvalidValue},
	{"size ambiguous", "replica:\n  part-size: 5M\n",
		`walfs.yml:2: replica.part-size: size "5M" has an ambiguous unit (write 5MB for powers of 1000 or 5MiB for powers of 1024)`, ErrInvalidValue},
	{"concurrency negative", "replica:\n  concurrency: -1\n",
		`walfs.yml:2: replica.concurrency: invalid value "-1" (use a whole number from 1 to 1024, such as 4)`, ErrInvalidValue},
	{"concurrency zero", "replica:\n  concurrency: 0\n",
		`walfs.yml:2: replica.concurrency: invalid value "0" (use a whole number from 1 to 1024, such as 4)`, ErrInvalidValue},
	{"concurrency fraction", "replica:\n  concurrency: 2.5\n",
		`walfs.yml:2: replica.concurrency: invalid value "2.5" (use a whole number from 1 to 1024, such as 4)`, ErrInvalidValue},
	{"concurrency huge", "replica:\n  concurrency: 5242880\n",
		`walfs.yml:2: replica.concurrency: invalid value "5242880" (use a whole number from 1 to 1024, such as 4)`, ErrInvalidValue},
	{"duration negative", "sync-interval: -5s\n",
		`walfs.yml:1: sync-interval: duration "-5s" is negative (use a number with a unit, such as 500ms, 30s, 5m or 24h)`, ErrInvalidValue},
	{"duration no unit", "timeout: 30\n",
		`walfs.yml:1: timeout: duration "30" has no unit (use a number with a unit, such as 500ms, 30s, 5m or 24h)`, ErrInvalidValue},
	{"duration days", "retention: 7d\n",
		`walfs.yml:1: retention: invalid duration "7d" (there is no day unit; write 168h)`, ErrInvalidValue},
	{"duration garbage", "sync-timeout: soon\n",
		`walfs.yml:1: sync-timeout: invalid duration "soon" (use a number with a unit, such as 500ms, 30s, 5m or 24h)`, ErrInvalidValue},
	{"durability", "durability: sometimes\n",
		`walfs.yml:1: durability: invalid value "sometimes" (allowed: async, sync)`, ErrInvalidValue},
	{"capture", "capture: fuse\n",
		`walfs.yml:1: capture: invalid value "fuse" (allowed: auto, passthrough, userspace)`, ErrInvalidValue},
	{"log-level", "log-level: warning\n",
		`walfs.yml:1: log-level: invalid value "warning" (allowed: debug, info, warn, error)`, ErrInvalidValue},
	{"log-format", "log-format: logfmt\n",
		`walfs.yml:1: log-format: invalid value "logfmt" (allowed: text, json)`, ErrInvalidValue},
	{"lease", "lease: always\n",
		`walfs.yml:1: lease: invalid value "always" (allowed: auto, required, off)`, ErrInvalidValue},
	{"replica type", "replica:\n  type: gcs\n",
		`walfs.yml:2: replica.type: invalid value "gcs" (allowed: s3, file)`, ErrInvalidValue},
	{"bool", "replica:\n  skip-verify: maybe\n",
		`walfs.yml:2: replica.skip-verify: invalid value "maybe" (use true or false)`, ErrInvalidValue},
	{"list for a string", "data-dir:\n  - /a\n  - /b\n",
		`walfs.yml:2: data-dir: expected a directory path, found a list`, ErrInvalidValue},
	{"mapping for a duration", "sync-interval:\n  seconds: 1\n",
		`walfs.yml:2: sync-interval: expected a duration such as 1s, 500ms or 24h, found a mapping (indented keys)`, ErrInvalidValue},
	{"empty value", "data-dir: /d\nmount-point:\n",
		`walfs.yml:2: mount-point is empty (give a directory path, or delete the line)`, ErrInvalidValue},
	{"multi-line value", "data-dir: |\n  /a\n  /b\n",
		`walfs.yml:1: data-dir: the value spans more than one line (write it on one line)`, ErrInvalidValue},
	{"multi-line value from env", "data-dir: $MULTI\n",
		`walfs.yml:1: data-dir: the value spans more than one line (write it on one line)`, ErrInvalidValue},
	{"tag on a value", "secret-access-key: !x9fQ\n",
		`walfs.yml:1: secret-access-key: the value starts with "!", which YAML reads as a tag (quote the value)`, ErrInvalidValue},
	{"replica as a string", "replica: s3://b/p\n",
		`walfs.yml:1: replica: expected settings indented under it, such as "url: s3://bucket/path", found a single value`, ErrInvalidValue},
	{"replica empty", "replica:\n",
		`walfs.yml:1: replica is empty (indent "url: s3://bucket/path", or type, bucket and path, under it)`, ErrInvalidValue},
	{"two replicas", "data-dir: /d\nreplicas:\n  - url: s3://a/b\n  - url: s3://c/d\n  - url: file:///x\n",
		`walfs.yml:4: replicas lists 3 entries, but walfs replicates to one replica per mount; remove extra entries`, ErrInvalidValue},
	{"replicas empty list", "replicas: []\n",
		`walfs.yml:1: replicas is empty (add one replica as "- url: s3://bucket/path", or remove the key)`, ErrInvalidValue},
	{"replicas null", "replicas:\n",
		`walfs.yml:1: replicas is empty (add one replica as "- url: s3://bucket/path", or remove the key)`, ErrInvalidValue},
	{"replicas as mapping", "replicas:\n  url: s3://a/b\n",
		`walfs.yml:2: replicas: expected a list of one replica ("- url: ..."), found a mapping (indented keys) (for a single block write "replica:")`, ErrInvalidValue},
	{"replica and replicas", "replica:\n  url: s3://a/b\nreplicas:\n  - url: s3://c/d\n",
		`walfs.yml:3: set replica or replicas, not both (walfs replicates to one replica per mount)`, ErrInvalidValue},
	{"url and bucket", "replica:\n  url: s3://a/b\n  region: x\n  bucket: c\n",
		`walfs.yml:4: replica.bucket: set either url or bucket, not both (the url already names the bucket)`, ErrInvalidValue},
	{"url and path", "replica:\n  path: p\n  url: s3://a/b\n",
		`walfs.yml:2: replica.path: set either url or path, not both (the url already names the path)`, ErrInvalidValue},
	{"url and type disagree", "replica:\n  type: file\n  url: s3://a/b\n",
		`walfs.yml:2: replica.type: "file" contradicts the s3:// url (remove type; the url sets it)`, ErrInvalidValue},
	{"url scheme", "replica:\n  url: gs://a/b\n",
		`walfs.yml:2: replica.url: unsupported scheme "gs://" (walfs replicates to s3:// or file:// URLs)`, ErrInvalidValue},

	// Environment variables.
	{"unset variable", "data-dir: /d\nsecret-access-key: $NOT_SET\n",
		`walfs.yml:2: secret-access-key: environment variable NOT_SET is not set (export it, or write $$ for a literal $)`, ErrUnsetVariable},
	{"unset braced variable", "replica:\n  bucket: pre-${NOT_SET}-post\n",
		`walfs.yml:2: replica.bucket: environment variable NOT_SET is not set (export it, or write $$ for a literal $)`, ErrUnsetVariable},
	{"unset variable in a block", "data-dir: /d\nsecret-access-key: |\n  abc\n  $NOT_SET\n",
		`walfs.yml:4: secret-access-key: environment variable NOT_SET is not set (export it, or write $$ for a literal $)`, ErrUnsetVariable},
	{"unset variable deep in a block", "data-dir: |\n  /a\n  /b\n  /c/$NOT_SET\n",
		`walfs.yml:4: data-dir: environment variable NOT_SET is not set (export it, or write $$ for a literal $)`, ErrUnsetVariable},
	{"unterminated brace", "data-dir: ${HOME\n",
		`walfs.yml:1: data-dir: "${" has no closing "}" (write ${NAME}, or $$ for a literal $)`, ErrUnsetVariable},
	{"empty braces", "data-dir: ${}\n",
		`walfs.yml:1: data-dir: empty variable reference "${}" (write ${NAME}, or $$ for a literal $)`, ErrUnsetVariable},
	{"bad name", "data-dir: ${1A}\n",
		`walfs.yml:1: data-dir: invalid variable name in "${...}" (names are letters, digits and _, not starting with a digit; write $$ for a literal $)`, ErrUnsetVariable},
	{"shell default", "region: ${REGION:-us-east-1}\n",
		`walfs.yml:1: unknown key "region" (region is a replica setting; indent it under "replica:")`, ErrUnknownKey},
	{"shell default in replica", "replica:\n  region: ${REGION:-us-east-1}\n",
		`walfs.yml:2: replica.region: shell default syntax such as "${NAME:-default}" is not supported (write ${NAME} and set the variable)`, ErrUnsetVariable},

	// YAML syntax and shape.
	{"unclosed bracket", "data-dir: /d\nmount-point: /m\nreplica: [1\nlease: off\n",
		`walfs.yml:3: invalid YAML: did not find expected ',' or ']' (check indentation and quoting)`, ErrSyntax},
	{"unclosed bracket at the end", "data-dir: /d\nreplica: [\n\n\n",
		`walfs.yml:2: invalid YAML: did not find expected node content (check indentation and quoting)`, ErrSyntax},
	{"unclosed bracket, no newline", "[",
		`walfs.yml:1: invalid YAML: did not find expected node content (check indentation and quoting)`, ErrSyntax},
	{"tab after CR line breaks", "data-dir: /d\rreplica:\r\turl: s3://a/b\r",
		`walfs.yml:3: invalid YAML: found character that cannot start any token (indent with spaces; YAML does not allow tabs)`, ErrSyntax},
	{"bad indentation", "data-dir: /d\nreplica:\n  url: s3://a/b\n bucket: c\n",
		`walfs.yml:4: invalid YAML: did not find expected key (check indentation and quoting)`, ErrSyntax},
	{"mapping value in a value", "data-dir: /d\nmount-point: a: b\n",
		`walfs.yml:2: invalid YAML: mapping values are not allowed in this context (check indentation and quoting)`, ErrSyntax},
	{"tab indentation", "data-dir: /d\nreplica:\n\turl: s3://a/b\n",
		`walfs.yml:3: invalid YAML: found character that cannot start any token (indent with spaces; YAML does not allow tabs)`, ErrSyntax},
	{"at sign", "data-dir: /d\nsecret-access-key: @abc\n",
		"walfs.yml:2: invalid YAML: found character that cannot start any token (quote values that start with @ or `)", ErrSyntax},
	{"unknown anchor", "data-dir: /d\nsecret-access-key: *abc\n",
		`walfs.yml:2: invalid YAML: a value starts with "*", which refers to an undefined anchor (quote values that start with *, & or !)`, ErrSyntax},
	{"unclosed quote", "data-dir: /d\nmount-point: \"/m\n\nlease: off\n",
		`walfs.yml:2: invalid YAML: found unexpected end of stream (check indentation and quoting)`, ErrSyntax},
	{"control character", "data-dir: /d\n\nmount-point: /m\x01\n",
		`walfs.yml:3: invalid YAML: control characters are not allowed (save the file as UTF-8 text)`, ErrSyntax},
	{"invalid UTF-8", "data-dir: /d\nmount-point: /m\xff\n",
		`walfs.yml:2: invalid YAML: invalid leading UTF-8 octet (save the file as UTF-8 text)`, ErrSyntax},
	{"alias to a mapping", "replica: &r\n  type: s3\n  bucket: *r\n",
		`walfs.yml:3: replica.bucket: expected a bucket name, found a mapping (indented keys)`, ErrInvalidValue},
	{"duplicate key", "data-dir: /a\nlease: off\ndata-dir: /b\n",
		`walfs.yml:3: "data-dir" is set twice (also on line 1; keep one)`, ErrSyntax},
	{"duplicate replica key", "replica:\n  url: s3://a/b\n  url: s3://c/d\n",
		`walfs.yml:3: "replica.url" is set twice (also on line 2; keep one)`, ErrSyntax},
	{"top level list", "- data-dir: /d\n",
		`walfs.yml:1: expected settings as "key: value" lines, such as "data-dir: /var/lib/walfs", found a list`, ErrSyntax},
	{"top level scalar", "hello\n",
		`walfs.yml:1: expected settings as "key: value" lines, such as "data-dir: /var/lib/walfs", found a single value`, ErrSyntax},
	{"two documents", "data-dir: /d\n---\nlease: off\n",
		`walfs.yml:2: a second YAML document starts here (walfs reads one; remove the "---" line and what follows)`, ErrSyntax},
	{"merge key", "base: &b {url: s3://a/b}\nreplica:\n  <<: *b\n",
		`walfs.yml:1: unknown key "base" (known keys: access-key-id, allow-other, capture, data-dir, durability, follow, lease, lease-ttl, log-format, log-level, mount-point, poll-interval, replica, replicas, retention, secret-access-key, snapshot-interval, sync-interval, sync-timeout, takeover-after, timeout)`, ErrUnknownKey},
	{"merge key in replica", "replica:\n  <<: {url: s3://a/b}\n",
		`walfs.yml:2: merge keys (<<) are not supported (write the keys out in full)`, ErrSyntax},
	{"complex key", "? [a, b]\n: c\n",
		`walfs.yml:1: keys must be plain names such as "data-dir", found a list`, ErrSyntax},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse([]byte(tt.in), "walfs.yml", testEnv)
			if err == nil {
				t.Fatalf("got no error and %v, want %q", cfg, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, want *Error", err)
			}
			if e.File != "walfs.yml" {
				t.Errorf("got File %q, want walfs.yml", e.File)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := parse([]byte("data-dir: /d\nreplica:\n  part-size: lots\n"), "cfg/walfs.yml", testEnv)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	got := *e
	want := Error{File: "cfg/walfs.yml", Line: 3, Key: "replica.part-size", Err: ErrInvalidValue,
		Msg: `replica.part-size: invalid size "lots" (use bytes or a number with a unit, such as 5242880, 5MB or 10MiB)`}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseDefaultSource(t *testing.T) {
	_, err := Parse([]byte("lease: never\n"), "")
	want := `config:1: lease: invalid value "never" (allowed: auto, required, off)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestErrorsKeepSecrets puts the secret (or its tail) in every position an
// error could be about and checks no message repeats it.
func TestErrorsKeepSecrets(t *testing.T) {
	const literal = "Zq9XsecretLiteral"
	inputs := []string{
		"secret-access-key: [$SECRET]\n",
		"secret-access-key: {a: $SECRET}\n",
		"secret-access-key: $SECRET\nsecret-access-key: $SECRET\n",
		"replica:\n  secret-access-key: $SECRET\n  secret-acess-key: $SECRET\n",
		"secret-access-key: !" + literal + "\n",
		"secret-access-key: *" + literal + "\n",
		"secret-access-key: &" + literal + "\n",
		"secret-access-key: @" + literal + "\n",
		"secret-access-key: ${" + literal + "-x}\n",
		"secret-access-key: ${" + literal + "\n",
		"secret-access-key: \"" + literal + "\\q\"\n",
		"secret-access-key: '" + literal + "\n",
		"secret-access-key: \"" + literal + "\x01\"\n",
		"secret-access-key: " + literal + "\n  more: x\n",
		"replica:\n  url: s3://id:" + literal + "@b/p\n  bucket: b\n",
		"replica:\n  url: gs://id:" + literal + "@b/p\n",
		"replica:\n  url: " + literal + "://x\n",
		"durability: $SECRET\n" + "secret-access-key: " + literal + "\n",
	}
	for _, in := range inputs {
		_, err := parse([]byte(in), "walfs.yml", testEnv)
		if err == nil {
			t.Errorf("%q: got no error", in)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, literal) || strings.Contains(msg, literal[4:]) || strings.Contains(msg, testSecret[:8]) && !strings.HasPrefix(in, "durability") {
			t.Errorf("%q: error leaks the secret: %s", in, msg)
		}
		if strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%q: error is not one line: %q", in, msg)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("walfs.yml", "data-dir: /d\nlease: required\n")
	got, err := Load("walfs.yml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Config{DataDir: "/d", Lease: "required", Set: set("data-dir", "lease")}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}

	write("bad.yml", "data-dir: /d\nleese: off\n")
	if err := os.Mkdir("conf.d", 0o755); err != nil {
		t.Fatal(err)
	}
	write("big.yml", "# "+strings.Repeat("x", maxFileSize)+"\n")

	tests := []struct {
		path string
		want string
		is   error
	}{
		{"walfs.yml.missing", `config file walfs.yml.missing: no such file (check the --config path)`, fs.ErrNotExist},
		{"nodir/walfs.yml", `config file nodir/walfs.yml: no such file (check the --config path)`, fs.ErrNotExist},
		{"conf.d", `config file conf.d: is a directory (--config takes the path of a YAML file)`, fs.ErrInvalid},
		{"big.yml", `config file big.yml: larger than 1 MiB, which no walfs config is (check the --config path)`, ErrTooLarge},
		{"bad.yml", `bad.yml:2: unknown key "leese" (did you mean "lease"?)`, ErrUnknownKey},
		{"walfs.yml/x", `config file walfs.yml/x: cannot open: not a directory (check the --config path)`, nil},
	}
	for _, tt := range tests {
		_, err := Load(tt.path)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Load(%q): got %v\nwant %s", tt.path, err, tt.want)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("Load(%q): errors.Is(err, %v) = false", tt.path, tt.is)
		}
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		id, secret string
	}{
		{"none", Config{}, "", ""},
		{"top level only", Config{AccessKeyID: "top-id", SecretAccessKey: "top-s", Replica: &Replica{}}, "top-id", "top-s"},
		{"no replica block", Config{AccessKeyID: "top-id", SecretAccessKey: "top-s"}, "top-id", "top-s"},
		{"replica overrides", Config{AccessKeyID: "top-id", SecretAccessKey: "top-s",
			Replica: &Replica{AccessKeyID: "r-id", SecretAccessKey: "r-s"}}, "r-id", "r-s"},
		{"each falls back alone", Config{AccessKeyID: "top-id", SecretAccessKey: "top-s",
			Replica: &Replica{AccessKeyID: "r-id"}}, "r-id", "top-s"},
	}
	for _, tt := range tests {
		id, secret := tt.cfg.Credentials()
		if id != tt.id || secret != tt.secret {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", tt.name, id, secret, tt.id, tt.secret)
		}
	}
}
