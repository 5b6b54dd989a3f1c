package s3backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/walfs/walfs/providers"
)

// MetadataTimestamp is the user-metadata key holding an object's CreatedAt
// (RFC 3339 with nanoseconds), as Litestream writes and reads it.
const MetadataTimestamp = "litestream-timestamp"

// maxDeleteBatch is the S3 limit of keys per DeleteObjects request.
const maxDeleteBatch = 1000

// S3Store is a Store on an S3 bucket (AWS or any S3-compatible service).
// Objects are written with one PutObject up to the part size and with a
// multipart upload above it.
type S3Store struct {
	client *s3.Client
	//lint:ignore SA1019 manager is what go.mod pins and the brief asks for; transfermanager is still v0.
	uploader *manager.Uploader
	bucket   string
	prefix   string // "" or "path/" inside the bucket
	partSize int64
	desc     string
	ec       errContext
	logger   *slog.Logger
}

var (
	_ Store  = (*S3Store)(nil)
	_ Stater = (*S3Store)(nil)
)

// S3Options are the resolved settings of an S3 store. New builds them from a
// Config; tests and callers that wire things themselves may fill them in.
type S3Options struct {
	Bucket   string
	Path     string // key prefix inside the bucket (the replica root)
	Endpoint string // "" for AWS; otherwise a URL with scheme
	Region   string // "" to use the AWS chain, then the profile default
	// Profile holds the provider settings to apply, user overrides included
	// (providers.Detect(endpoint).With(...)).
	Profile providers.Profile
	// Credentials; nil uses the AWS default chain.
	Credentials aws.CredentialsProvider
	// CredentialSource names where Credentials came from, for error hints
	// ("WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY"); see Credentials.String.
	CredentialSource string
	// Retry is how each request is retried; zero means DefaultRetryPolicy.
	Retry       RetryPolicy
	CAFile      string // PEM bundle trusted in addition to the system roots
	SkipVerify  bool   // disable TLS verification (development only)
	PartSize    int64  // multipart part size; 0: the profile's minimum (5 MiB)
	Concurrency int    // parts in flight per upload; 0: SDK default capped by the profile
	Logger      *slog.Logger
}

// NewS3Store builds an S3 store. It does not contact the server; call Init.
func NewS3Store(ctx context.Context, o S3Options) (*S3Store, error) {
	if o.Bucket == "" {
		return nil, withHint(fmt.Errorf("%w: s3 bucket is empty", ErrInvalidConfig), "set bucket, or use a URL like s3://bucket/path")
	}
	prefix, err := cleanPrefix(o.Path)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	minPart := max(o.Profile.MinPartSize.Value, manager.MinUploadPartSize)
	partSize := o.PartSize
	if partSize == 0 {
		partSize = minPart
	}
	if partSize < minPart {
		return nil, withHint(fmt.Errorf("%w: part-size %d is below the %d-byte multipart minimum", ErrInvalidConfig, partSize, minPart),
			"set part-size to at least 5MiB or leave it unset")
	}
	concurrency := o.Concurrency
	if concurrency <= 0 {
		concurrency = manager.DefaultUploadConcurrency
		if c := o.Profile.MaxConcurrency.Value; c > 0 && c < concurrency {
			concurrency = c
		}
	}
	client, err := newS3Client(ctx, o)
	if err != nil {
		return nil, err
	}
	checksum := aws.RequestChecksumCalculationWhenSupported
	if o.Profile.Checksum.Value == providers.ChecksumWhenRequired {
		checksum = aws.RequestChecksumCalculationWhenRequired
	}
	//lint:ignore SA1019 see the uploader field.
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = concurrency
		u.LeavePartsOnError = false
		// The uploader ignores the client's setting and would add CRC32
		// trailers to every part (NOTES §4).
		u.RequestChecksumCalculation = checksum
	})
	s := &S3Store{
		client:   client,
		uploader: uploader,
		bucket:   o.Bucket,
		prefix:   prefix,
		partSize: partSize,
		logger:   o.Logger,
	}
	s.ec = errContext{endpoint: o.Endpoint, bucket: o.Bucket, region: client.Options().Region, creds: o.CredentialSource}
	if s.ec.creds == "" {
		s.ec.creds = "the AWS default chain"
		if o.Credentials != nil {
			s.ec.creds = "the configured credentials"
		}
	}
	s.desc = "s3://" + o.Bucket + "/" + strings.TrimSuffix(prefix, "/")
	if o.Endpoint != "" {
		s.desc += " (endpoint " + o.Endpoint + ", " + o.Profile.Name + ")"
	}
	return s, nil
}

// cleanPrefix turns a replica path into a key prefix: "" or "a/b/".
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := ValidateDB(p); err != nil {
		return "", withHint(fmt.Errorf("%w: replica path %q: %w", ErrInvalidConfig, p, err), "use a plain path like backups/app")
	}
	return p + "/", nil
}

// String describes the store for logs; it never contains secrets.
func (s *S3Store) String() string { return s.desc }

// Client returns the underlying S3 client (for probes and tests).
func (s *S3Store) Client() *s3.Client { return s.client }

func (s *S3Store) key(info FileInfo) string { return s.prefix + Key(info) }

// Init checks that the bucket is reachable, listable and writable by writing
// and deleting a small probe object under the replica root.
func (s *S3Store) Init(ctx context.Context) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return fmt.Errorf("init %s: list: %w", s, s.ec.classify(err))
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	probe := s.prefix + ".walfs-probe-" + hex.EncodeToString(rnd[:])
	if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &probe, Body: bytes.NewReader([]byte("walfs")), ContentLength: aws.Int64(5),
	}); err != nil {
		return fmt.Errorf("init %s: write probe: %w", s, s.ec.classify(err))
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &probe}); err != nil {
		// Replication works without delete permission until retention runs.
		s.logger.Warn("cannot delete init probe object; retention will fail too",
			"store", s.String(), "key", probe, "err", s.ec.classify(err))
	}
	return nil
}

// ListDatabases lists every key under the root and returns the db paths of
// the LTX objects among them.
func (s *S3Store) ListDatabases(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list databases in %s: %w", s, s.ec.classify(err))
		}
		for _, obj := range page.Contents {
			if info, ok := ParseKey(strings.TrimPrefix(aws.ToString(obj.Key), s.prefix)); ok {
				seen[info.DB] = true
			}
		}
	}
	dbs := make([]string, 0, len(seen))
	for db := range seen {
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	return dbs, nil
}

// List returns the LTX objects of db at level. CreatedAt is the object's
// LastModified: reading the timestamp metadata would cost one HEAD per
// object (use Stat where the commit time matters).
func (s *S3Store) List(ctx context.Context, db string, level int) ([]FileInfo, error) {
	if err := ValidateDB(db); err != nil {
		return nil, err
	}
	if err := ValidateLevel(level); err != nil {
		return nil, err
	}
	dir := LevelDir(db, level) + "/"
	infos := []FileInfo{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: aws.String(s.prefix + dir), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s%s: %w", s.prefix, dir, s.ec.classify(err))
		}
		for _, obj := range page.Contents {
			info, ok := ParseKey(strings.TrimPrefix(aws.ToString(obj.Key), s.prefix))
			if !ok || info.DB != db || info.Level != level {
				continue
			}
			info.Size = aws.ToInt64(obj.Size)
			info.CreatedAt = aws.ToTime(obj.LastModified).UTC()
			infos = append(infos, info)
		}
	}
	SortFileInfos(infos)
	return infos, nil
}

// Stat reads one object's size and its CreatedAt from the timestamp metadata
// (LastModified when the metadata is missing).
func (s *S3Store) Stat(ctx context.Context, info FileInfo) (FileInfo, error) {
	if err := ValidateFileInfo(info); err != nil {
		return FileInfo{}, err
	}
	key := s.key(info)
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return FileInfo{}, fmt.Errorf("stat %s: %w", key, &kindError{ErrNotFound, err})
		}
		return FileInfo{}, fmt.Errorf("stat %s: %w", key, s.ec.classify(err))
	}
	info.Size = aws.ToInt64(out.ContentLength)
	info.CreatedAt = aws.ToTime(out.LastModified).UTC()
	for k, v := range out.Metadata {
		if strings.EqualFold(k, MetadataTimestamp) {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				info.CreatedAt = t.UTC()
			}
		}
	}
	return info, nil
}

// Open returns the object's content from byte off.
func (s *S3Store) Open(ctx context.Context, info FileInfo, off int64) (io.ReadCloser, error) {
	if err := ValidateFileInfo(info); err != nil {
		return nil, err
	}
	key := s.key(info)
	if off < 0 {
		return nil, fmt.Errorf("open %s at %d: %w", key, off, ErrInvalidRange)
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		err = s.ec.classify(err)
		if errors.Is(err, ErrInvalidRange) {
			// S3 answers 416 for a range starting exactly at the end too;
			// that is a valid, empty read.
			st, serr := s.Stat(ctx, info)
			if serr != nil {
				return nil, serr
			}
			if st.Size == off {
				return io.NopCloser(bytes.NewReader(nil)), nil
			}
			return nil, fmt.Errorf("open %s at %d (size %d): %w", key, off, st.Size, err)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if off > 0 && aws.ToString(out.ContentRange) == "" {
		// The server ignored the Range header and sent the whole object.
		if _, err := io.CopyN(io.Discard, out.Body, off); err != nil {
			out.Body.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("open %s at %d: %w", key, off, ErrInvalidRange)
			}
			return nil, fmt.Errorf("open %s: skip to %d: %w", key, off, err)
		}
	}
	return out.Body, nil
}

// Write uploads the object with its CreatedAt in the timestamp metadata.
// S3 makes every PUT and completed multipart upload atomic; a failed or
// short upload leaves no object (multipart uploads are aborted).
func (s *S3Store) Write(ctx context.Context, info FileInfo, r io.Reader, size int64) (FileInfo, error) {
	if err := ValidateFileInfo(info); err != nil {
		return FileInfo{}, err
	}
	if size < 0 {
		return FileInfo{}, fmt.Errorf("%w: negative size %d", ErrInvalidFileInfo, size)
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now()
	}
	info.CreatedAt = info.CreatedAt.UTC()
	info.Size = size
	key := s.key(info)
	meta := map[string]string{MetadataTimestamp: info.CreatedAt.Format(time.RFC3339Nano)}
	body := newExactReader(r, size)
	if size <= s.partSize {
		// Buffered: a seekable body lets the SDK sign the payload and retry.
		data, err := io.ReadAll(body)
		if err != nil {
			return FileInfo{}, fmt.Errorf("write %s: %w", key, err)
		}
		if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data),
			ContentLength: aws.Int64(size), Metadata: meta,
		}); err != nil {
			return FileInfo{}, fmt.Errorf("write %s: %w", key, s.ec.classify(err))
		}
		return info, nil
	}
	//lint:ignore SA1019 see the uploader field.
	if _, err := s.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: body, Metadata: meta,
	}); err != nil {
		return FileInfo{}, fmt.Errorf("write %s: multipart: %w", key, s.ec.classify(err))
	}
	return info, nil
}

// Delete removes objects in batches; missing keys are not errors. Stores
// without DeleteObjects fall back to one DeleteObject per key.
func (s *S3Store) Delete(ctx context.Context, infos []FileInfo) error {
	keys := make([]string, 0, len(infos))
	for _, info := range infos {
		if err := ValidateFileInfo(info); err != nil {
			return err
		}
		keys = append(keys, s.key(info))
	}
	for batch := range slices.Chunk(keys, maxDeleteBatch) {
		if err := s.deleteBatch(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (s *S3Store) deleteBatch(ctx context.Context, keys []string) error {
	objs := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		objs[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.bucket, Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		if code := apiCode(err); code == "NotImplemented" || code == "MethodNotAllowed" {
			return s.deleteEach(ctx, keys)
		}
		return fmt.Errorf("delete %d objects from %s: %w", len(keys), s, s.ec.classify(err))
	}
	var errs []error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		errs = append(errs, fmt.Errorf("delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	return errors.Join(errs...)
}

func (s *S3Store) deleteEach(ctx context.Context, keys []string) error {
	for _, key := range keys {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s: %w", key, s.ec.classify(err))
		}
	}
	return nil
}
