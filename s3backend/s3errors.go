package s3backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"

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

// errContext is what the hints of one store may name: the settings its
// requests were actually made with. It holds no secrets.
type errContext struct {
	endpoint string // as configured; "" for AWS
	bucket   string
	region   string // the signing region
	creds    string // where the credentials came from (Credentials.String)
	now      func() time.Time
}

// where names the store for hints.
func (c errContext) where() string {
	if c.endpoint == "" {
		return "Amazon S3"
	}
	return c.endpoint
}

func (c errContext) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// classify maps an SDK error to the package's sentinels and a one-line hint
// naming the settings to check. Errors it does not recognize are returned
// unchanged.
func (c errContext) classify(err error) error {
	if err == nil {
		return nil
	}
	if isNoCredentials(err) {
		// Checked first: the AWS chain's own failures (an instance
		// metadata 403, say) are not the store's answer.
		return withHint(&kindError{ErrNoCredentials, err}, fmt.Sprintf(
			"no credentials: %s found none; set access-key-id and secret-access-key, WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an AWS profile (AWS_PROFILE)", c.creds))
	}
	switch apiCode(err) {
	case "NoSuchKey":
		return &kindError{ErrNotFound, err}
	case "NoSuchBucket":
		return withHint(&kindError{ErrBucketNotFound, err}, fmt.Sprintf(
			"bucket %q does not exist at %s: create it first (walfs does not create buckets), or fix bucket and endpoint", c.bucket, c.where()))
	case "InvalidAccessKeyId":
		return withHint(&kindError{ErrAccessDenied, err}, fmt.Sprintf(
			"%s does not know the access-key-id from %s: check it, and that the key was made for this store", c.where(), c.creds))
	case "SignatureDoesNotMatch":
		return withHint(&kindError{ErrAccessDenied, err}, c.signatureHint(err))
	case "RequestTimeTooSkewed":
		return withHint(&kindError{ErrClockSkew, err}, c.skew(err)+": sync this machine's clock (timedatectl set-ntp true, or chronyc makestep)")
	case "InvalidToken", "ExpiredToken", "TokenRefreshRequired":
		return withHint(&kindError{ErrAccessDenied, err}, fmt.Sprintf(
			"the session token from %s is invalid or expired: refresh it (AWS_SESSION_TOKEN, aws sso login)", c.creds))
	case "AccessDenied", "Forbidden", "AccountProblem", "AllAccessDisabled":
		return withHint(&kindError{ErrAccessDenied, err}, c.accessHint())
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "InvalidRegion":
		return withHint(&kindError{ErrWrongRegion, err}, c.regionHint(err))
	case "InvalidRange":
		return &kindError{ErrInvalidRange, err}
	}
	switch status := httpStatus(err); {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		// HEAD answers carry no error code.
		return withHint(&kindError{ErrAccessDenied, err}, c.accessHint())
	case status == http.StatusMovedPermanently || (status == http.StatusBadRequest && bucketRegion(err) != ""):
		return withHint(&kindError{ErrWrongRegion, err}, c.regionHint(err))
	case status == http.StatusRequestedRangeNotSatisfiable:
		return &kindError{ErrInvalidRange, err}
	case status == http.StatusBadRequest && apiCode(err) == "" && strings.HasPrefix(endpointUsed(err, c.endpoint), "http://"):
		return withHint(err, fmt.Sprintf("%s answered 400 without an S3 error: if the server speaks https, use https:// in endpoint", endpointUsed(err, c.endpoint)))
	case status == http.StatusTooManyRequests || status >= 500:
		return withHint(err, fmt.Sprintf(
			"%s is overloaded or failing (HTTP %d, retried with backoff): the data waits on local disk and walfs tries again; check the provider's status page and request-rate limits", c.where(), status))
	}
	return c.classifyNet(err)
}

// classifyNet handles errors below HTTP: DNS, TCP, TLS, timeouts. Hints name
// the URL actually dialed (scheme included), which may differ from the
// configured endpoint by the bucket host of virtual-hosted addressing.
func (c errContext) classifyNet(err error) error {
	used := endpointUsed(err, c.endpoint)
	var (
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		dnsErr     *net.DNSError
		opErr      *net.OpError
		timeout    interface{ Timeout() bool }
	)
	unreachable := func(hint string) error { return withHint(&kindError{ErrUnreachable, err}, hint) }
	switch {
	case errors.As(err, &hostErr):
		return unreachable(fmt.Sprintf("the TLS certificate of %s is not valid for %s (it names %s): fix the endpoint host, or use ca-file with a certificate for this name",
			used, hostErr.Host, certNames(hostErr.Certificate)))
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &invalidErr):
		return unreachable(fmt.Sprintf("the TLS certificate of %s is not trusted: set ca-file (or AWS_CA_BUNDLE) to its CA, or use http:// for a local test server; skip-verify only for development", used))
	case errors.As(err, &recordErr), isHTTPToHTTPS(err):
		return unreachable(fmt.Sprintf("%s does not speak TLS: use http:// in endpoint for a plain-HTTP server", used))
	case errors.As(err, &dnsErr):
		hint := fmt.Sprintf("DNS has no address for %s (dialing %s): check the endpoint host name", dnsErr.Name, used)
		if !dnsErr.IsNotFound {
			hint = fmt.Sprintf("DNS lookup of %s (%s) failed: check this machine's resolver and network", dnsErr.Name, used)
		} else if c.bucket != "" && strings.HasPrefix(dnsErr.Name, c.bucket+".") {
			hint += fmt.Sprintf("; requests use virtual-hosted addressing (%s): set force-path-style=true if the store has no DNS name per bucket", dnsErr.Name)
		}
		return unreachable(hint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return unreachable(fmt.Sprintf("nothing accepts connections at %s: check the endpoint's host, port and http vs https, and that the server is running", used))
	case errors.Is(err, syscall.ECONNRESET):
		return unreachable(fmt.Sprintf("%s reset the connection on every attempt: check http vs https in endpoint, proxies and firewalls", used))
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return unreachable(fmt.Sprintf("no route to %s: check the network, VPN and firewall", used))
	case errors.As(err, &timeout) && timeout.Timeout():
		return unreachable(fmt.Sprintf("%s did not answer in time: check the endpoint, the network and firewalls; a stalled store is retried", used))
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return unreachable(fmt.Sprintf("cannot connect to %s: check the endpoint's host, port and scheme, that the server is running, and the firewall", used))
	}
	return err
}

// isNoCredentials reports a request that was never sent because the
// credential provider failed. The SDK wraps that failure in text only.
func isNoCredentials(err error) bool {
	return strings.Contains(err.Error(), "get identity: ")
}

// accessHint is for a refusal with valid credentials (or a bare 403).
func (c errContext) accessHint() string {
	return fmt.Sprintf("the credentials from %s may not do this in bucket %q at %s: allow listing, reading, writing and deleting objects under the replica path; also check region and clock",
		c.creds, c.bucket, c.where())
}

// signatureHint tells a wrong secret from a wrong clock.
func (c errContext) signatureHint(err error) string {
	skew, ok := serverSkew(err, c.clock())
	if ok && absDuration(skew) >= 5*time.Minute {
		return c.skew(err) + ": sync this machine's clock (signatures are only valid for 15 minutes)"
	}
	return fmt.Sprintf("the secret-access-key from %s does not belong to its access-key-id, or region %s is wrong; %s", c.creds, c.region, c.skew(err))
}

// skew compares the server's Date header with the local clock.
func (c errContext) skew(err error) string {
	skew, ok := serverSkew(err, c.clock())
	if !ok {
		return "the server sent no Date header to compare clocks with"
	}
	d := absDuration(skew).Round(time.Second)
	switch {
	case d <= time.Second:
		return "this machine's clock agrees with the server's Date (within 1s)"
	case skew > 0:
		return fmt.Sprintf("this machine's clock is %s behind the server's Date", d)
	default:
		return fmt.Sprintf("this machine's clock is %s ahead of the server's Date", d)
	}
}

// serverSkew returns server Date minus the local clock.
func serverSkew(err error, now time.Time) (time.Duration, bool) {
	h := responseHeader(err)
	if h == nil {
		return 0, false
	}
	t, perr := http.ParseTime(h.Get("Date"))
	if perr != nil {
		return 0, false
	}
	// Date has whole seconds, truncated: the server's clock read half a
	// second later on average.
	return t.Add(500 * time.Millisecond).Sub(now), true
}

var expectingRegion = regexp.MustCompile(`expecting '([a-z0-9-]+)'`)

// regionHint names the region the server wants: x-amz-bucket-region when
// the server sent it, else the one AuthorizationHeaderMalformed quotes.
func (c errContext) regionHint(err error) string {
	want := bucketRegion(err)
	if want == "" {
		if m := expectingRegion.FindStringSubmatch(err.Error()); m != nil {
			want = m[1]
		}
	}
	if want == "" || want == c.region {
		return fmt.Sprintf("the bucket is not in region %s (requests were signed for it): set region to the bucket's region (for S3-compatible stores the one their docs give, often us-east-1 or auto)", c.region)
	}
	return fmt.Sprintf("bucket %q is in region %s, not %s: set region: %s (or &region=%s in the replica URL)", c.bucket, want, c.region, want, want)
}

func bucketRegion(err error) string {
	if h := responseHeader(err); h != nil {
		return h.Get("X-Amz-Bucket-Region")
	}
	return ""
}

func responseHeader(err error) http.Header {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil {
		return re.Response.Header
	}
	return nil
}

// endpointUsed is scheme://host[:port] of the request that failed, or the
// configured endpoint when the error does not say.
func endpointUsed(err error, configured string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	if configured == "" {
		return "Amazon S3 (https)"
	}
	return configured
}

func certNames(cert *x509.Certificate) string {
	if cert == nil {
		return "no names"
	}
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "CN " + cert.Subject.CommonName
	}
	return strings.Join(names, ", ")
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
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
	return httpStatus(err) == http.StatusNotFound && !isBucketMissing(err)
}

func isBucketMissing(err error) bool {
	return apiCode(err) == "NoSuchBucket"
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
