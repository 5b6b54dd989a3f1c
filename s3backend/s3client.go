package s3backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/walfs/walfs/providers"
)

// newHTTPClient returns a BuildableClient: config.LoadDefaultConfig adds
// AWS_CA_BUNDLE to it through WithTransportOptions and refuses any other
// client type when that variable is set (NOTES §4).
func newHTTPClient(o S3Options) (*awshttp.BuildableClient, error) {
	c := awshttp.NewBuildableClient()
	if dial := dialOverride; dial != nil {
		c = c.WithTransportOptions(func(tr *http.Transport) { tr.DialContext = dial })
	}
	if t := o.Retry.withDefaults().ResponseTimeout; t > 0 {
		c = c.WithTransportOptions(func(tr *http.Transport) { tr.ResponseHeaderTimeout = t })
	}
	if o.CAFile == "" && !o.SkipVerify {
		return c, nil
	}
	var pool *x509.CertPool
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, withHint(fmt.Errorf("%w: read ca-file: %w", ErrInvalidConfig, err), "ca-file must name a readable PEM file")
		}
		pool, err = x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, withHint(fmt.Errorf("%w: ca-file %s holds no PEM certificates", ErrInvalidConfig, o.CAFile), "ca-file must be a PEM bundle (-----BEGIN CERTIFICATE-----)")
		}
	}
	return c.WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if pool != nil {
			// LoadDefaultConfig appends AWS_CA_BUNDLE to this pool afterwards.
			tr.TLSClientConfig.RootCAs = pool
		}
		if o.SkipVerify {
			tr.TLSClientConfig.InsecureSkipVerify = true
		}
	}), nil
}

// dialOverride, when set (by tests only, see export_test.go), replaces the
// dialer so requests for any host reach a local test server.
var dialOverride func(ctx context.Context, network, addr string) (net.Conn, error)

func newS3Client(ctx context.Context, o S3Options) (*s3.Client, error) {
	hc, err := newHTTPClient(o)
	if err != nil {
		return nil, err
	}
	p := o.Profile
	whenRequired := p.Checksum.Value == providers.ChecksumWhenRequired
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(o.Credentials))
	}
	if whenRequired {
		// The named constants: WithRequestChecksumCalculation(0) is "unset".
		opts = append(opts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, withHint(fmt.Errorf("%w: load aws config: %w", ErrInvalidConfig, err),
			"check AWS_CA_BUNDLE, AWS_PROFILE and ~/.aws/config")
	}
	if cfg.Region == "" {
		cfg.Region = p.Region.Value
	}
	limiter := newRateLimiter(p.RequestsPerSecond.Value)
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = p.PathStyle.Value
		// Ranged and multipart GETs carry no full-object checksum; the SDK
		// would log that on every read.
		so.DisableLogOutputChecksumValidationSkipped = true
		if whenRequired {
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		// Explicit, so AWS_MAX_ATTEMPTS and AWS_RETRY_MODE cannot change how
		// walfs treats a flaky store behind its back.
		so.Retryer = newRetryer(o.Retry.withDefaults())
		so.RetryMaxAttempts = 0
		so.APIOptions = append(so.APIOptions, apiOptions(p, limiter)...)
	}), nil
}
