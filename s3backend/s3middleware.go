package s3backend

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"maps"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/walfs/walfs/providers"
)

// apiOptions returns the middleware changes a provider profile needs.
func apiOptions(p providers.Profile, limiter *rateLimiter) []func(*middleware.Stack) error {
	var opts []func(*middleware.Stack) error
	if p.Checksum.Value == providers.ChecksumWhenRequired {
		// WhenRequired already keeps PutObject/UploadPart bodies plain; removing
		// the trailer step as well guarantees no aws-chunked body is ever sent.
		opts = append(opts, removeChecksumTrailer, addDeleteContentMD5)
	}
	// Over HTTPS the SDK sends PutObject and UploadPart with UNSIGNED-PAYLOAD
	// unless told otherwise, so signing must be forced, not just allowed.
	// When a checksum trailer is in use the SDK has already set the payload
	// hash and ComputePayloadSHA256 leaves it alone.
	if p.SignPayload.Value {
		opts = append(opts, swapPayloadHash(&v4.ComputePayloadSHA256{}))
	} else {
		opts = append(opts, swapPayloadHash(&v4.UnsignedPayload{}))
	}
	if len(p.Headers.Value) > 0 {
		opts = append(opts, addHeaders(maps.Clone(p.Headers.Value)))
	}
	if limiter != nil {
		opts = append(opts, addRateLimit(limiter))
	}
	return opts
}

// swapPayloadHash replaces the step that sets X-Amz-Content-Sha256.
// Operations without that step are left alone.
func swapPayloadHash(m middleware.FinalizeMiddleware) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		if _, ok := stack.Finalize.Get(m.ID()); ok {
			_, err := stack.Finalize.Swap(m.ID(), m)
			return err
		}
		return nil
	}
}

func removeChecksumTrailer(stack *middleware.Stack) error {
	// Absent on operations without trailing checksum support: not an error.
	_, _ = stack.Finalize.Remove("addInputChecksumTrailer")
	return nil
}

// addHeaders sets fixed headers before signing, so they are signed too.
func addHeaders(h map[string]string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("walfs:ProviderHeaders",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					for k, v := range h {
						req.Header.Set(k, v)
					}
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	}
}

// addDeleteContentMD5 sends Content-MD5 on DeleteObjects. S3 requires an
// integrity header there; with checksums WhenRequired the SDK sends only
// x-amz-checksum-crc32, which several S3-compatible stores do not accept in
// place of Content-MD5.
func addDeleteContentMD5(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("walfs:DeleteObjectsContentMD5",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			req, ok := in.Request.(*smithyhttp.Request)
			if !ok || middleware.GetOperationName(ctx) != "DeleteObjects" || req.Header.Get("Content-Md5") != "" {
				return next.HandleBuild(ctx, in)
			}
			if s := req.GetStream(); s != nil {
				b, err := io.ReadAll(s)
				if err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("read DeleteObjects body: %w", err)
				}
				sum := md5.Sum(b)
				req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
				r, err := req.SetStream(bytes.NewReader(b))
				if err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, err
				}
				in.Request = r
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}

// addRateLimit paces every attempt (it sits after the retry step).
func addRateLimit(l *rateLimiter) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		mw := middleware.FinalizeMiddlewareFunc("walfs:RateLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if err := l.wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
				return next.HandleFinalize(ctx, in)
			})
		if err := stack.Finalize.Insert(mw, "Retry", middleware.After); err != nil {
			return stack.Finalize.Add(mw, middleware.Before)
		}
		return nil
	}
}
