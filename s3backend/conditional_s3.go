package s3backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var (
	_ ConditionalWriter = (*S3Store)(nil)
	_ ChangeReader      = (*S3Store)(nil)
)

// Get reads a small object under the root with its ETag.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	return s.GetIfNoneMatch(ctx, key, "")
}

// GetIfNoneMatch reads a small object unless its ETag is etag: a GET with
// If-None-Match, which S3 answers with 304 Not Modified and no body. A
// store that ignores the header sends the object again; its ETag tells
// the same, so the answer is ErrNotModified either way.
func (s *S3Store) GetIfNoneMatch(ctx context.Context, key, etag string) ([]byte, string, error) {
	if err := ValidateConditionalKey(key); err != nil {
		return nil, "", err
	}
	full := s.prefix + key
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &full}
	if etag != "" {
		in.IfNoneMatch = aws.String(etag)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		switch {
		case isNotModified(err):
			return nil, "", fmt.Errorf("get %s: %w", full, &kindError{ErrNotModified, err})
		case isNotFound(err):
			return nil, "", fmt.Errorf("get %s: %w", full, &kindError{ErrNotFound, err})
		}
		return nil, "", fmt.Errorf("get %s: %w", full, s.ec.classify(err))
	}
	defer out.Body.Close()
	newETag := aws.ToString(out.ETag)
	if etag != "" && newETag == etag {
		return nil, "", fmt.Errorf("get %s: %w (the store ignored If-None-Match and sent it again)", full, ErrNotModified)
	}
	body, err := io.ReadAll(io.LimitReader(out.Body, MaxConditionalSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", full, s.ec.classify(err))
	}
	if len(body) > MaxConditionalSize {
		return nil, "", fmt.Errorf("get %s: object larger than %d bytes is not a walfs record", full, MaxConditionalSize)
	}
	return body, newETag, nil
}

// isNotModified recognizes S3's answer to a GET whose If-None-Match
// matched: HTTP 304 with no body, which the SDK turns into an API error
// coded from the status text ("NotModified").
func isNotModified(err error) bool {
	return httpStatus(err) == http.StatusNotModified || apiCode(err) == "NotModified"
}

// PutIfAbsent creates key with If-None-Match: *.
func (s *S3Store) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	return s.putConditional(ctx, key, body, func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
}

// PutIfMatch replaces key with If-Match: etag.
func (s *S3Store) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	if etag == "" {
		return "", fmt.Errorf("put %s: %w: empty ETag", key, ErrPreconditionFailed)
	}
	return s.putConditional(ctx, key, body, func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etag) })
}

func (s *S3Store) putConditional(ctx context.Context, key string, body []byte, cond func(*s3.PutObjectInput)) (string, error) {
	if err := ValidateConditionalKey(key); err != nil {
		return "", err
	}
	full := s.prefix + key
	in := &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &full, Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
	}
	cond(in)
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", full, s.conditionalErr(err))
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return "", fmt.Errorf("put %s: %w: the store returned no ETag", full, ErrConditionalUnsupported)
	}
	return etag, nil
}

// DeleteKey removes a conditional object unconditionally.
func (s *S3Store) DeleteKey(ctx context.Context, key string) error {
	if err := ValidateConditionalKey(key); err != nil {
		return err
	}
	full := s.prefix + key
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &full}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", full, s.ec.classify(err))
	}
	return nil
}

// conditionalErr maps the answers to a failed condition: 412
// PreconditionFailed, 409 ConditionalRequestConflict (a concurrent
// conditional write won) and, for If-Match on a missing key, 404 NoSuchKey
// all mean "not in the state you expected"; 501 NotImplemented (Backblaze
// B2) means the store has no conditional writes.
func (s *S3Store) conditionalErr(err error) error {
	code, status := apiCode(err), httpStatus(err)
	switch {
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed,
		code == "ConditionalRequestConflict" || status == http.StatusConflict,
		code == "NoSuchKey":
		return &kindError{ErrPreconditionFailed, err}
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		return withHint(&kindError{ErrConditionalUnsupported, err},
			fmt.Sprintf("%s does not do conditional writes (If-None-Match/If-Match); walfs cannot hold a lease there: set lease: auto or off", s.ec.where()))
	}
	cerr := s.ec.classify(err)
	if errors.Is(cerr, ErrNotFound) {
		return &kindError{ErrPreconditionFailed, err}
	}
	return cerr
}
