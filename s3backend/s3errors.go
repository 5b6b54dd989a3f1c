package s3backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// kindError attaches a sentinel to an SDK error so callers can branch with
// errors.Is while the message keeps the SDK's details (status, request id).
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.kind.Error() + ": " + e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// Hints for errors users can fix. They name the settings to check.
const (
	hintBucket      = "check the bucket name and that the bucket exists (create it first: walfs does not create buckets); for non-AWS stores check endpoint too"
	hintAccess      = "check access-key-id/secret-access-key (or WALFS_/AWS_ env vars), that the key may list, read, write and delete in this bucket, that region matches the bucket and that the clock is in sync"
	hintRegion      = "set region to the bucket's region (for S3-compatible stores, the region their docs give, often us-east-1 or auto)"
	hintUnreachable = "check endpoint (host, port, http vs https), that the server is running and reachable from here, and the firewall"
	hintTLS         = "the server's certificate is not trusted: set ca-file (or AWS_CA_BUNDLE) to its CA, or use http:// for a local test server; skip-verify only for development"
)

// classify maps an SDK error to the package's sentinels and hints. Errors it
// does not recognize are returned unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey":
			return &kindError{ErrNotFound, err}
		case "NoSuchBucket":
			return withHint(&kindError{ErrBucketNotFound, err}, hintBucket)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden",
			"InvalidToken", "ExpiredToken", "AccountProblem", "AllAccessDisabled":
			return withHint(&kindError{ErrAccessDenied, err}, hintAccess)
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "InvalidRegion":
			return withHint(err, hintRegion)
		case "InvalidRange":
			return &kindError{ErrInvalidRange, err}
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusForbidden, http.StatusUnauthorized:
			return withHint(&kindError{ErrAccessDenied, err}, hintAccess)
		case http.StatusMovedPermanently:
			return withHint(err, hintRegion)
		case http.StatusRequestedRangeNotSatisfiable:
			return &kindError{ErrInvalidRange, err}
		}
	}
	var (
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return withHint(&kindError{ErrUnreachable, err}, hintTLS)
	case errors.As(err, &recordErr):
		return withHint(&kindError{ErrUnreachable, err}, "the endpoint does not speak TLS: use http:// in endpoint for a plain-HTTP server")
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || (errors.As(err, &opErr) && opErr.Op == "dial") {
		return withHint(&kindError{ErrUnreachable, err}, hintUnreachable)
	}
	return err
}

// isNotFound reports whether err is a missing object (HEAD answers a bare 404).
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && !isBucketMissing(err)
}

func isBucketMissing(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket"
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
