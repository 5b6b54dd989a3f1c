package s3backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// RetryPolicy is how the S3 client retries one request. It retries
// connection resets and refusals, timeouts, HTTP 5xx and 429 and the
// throttling codes (SlowDown, ...); everything else fails at once. A request
// that runs out of attempts fails upward: the replicator keeps the data in
// its local spool and tries the upload again later, so nothing is dropped.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included.
	MaxAttempts int
	// BaseDelay is the backoff before the first retry of a transient error
	// (reset, timeout, 5xx); it doubles per attempt.
	BaseDelay time.Duration
	// ThrottleBaseDelay replaces BaseDelay after the store asked us to slow
	// down (429, 503, SlowDown): retrying those fast only prolongs them.
	ThrottleBaseDelay time.Duration
	// MaxBackoff caps every delay.
	MaxBackoff time.Duration
	// ResponseTimeout bounds the wait for response headers once a request is
	// fully sent; a store that stalls is retried rather than waited on
	// forever. 0 waits as long as the caller's context allows.
	ResponseTimeout time.Duration
}

// DefaultRetryPolicy is used when S3Options.Retry is zero: five attempts
// over about 3 s for transient errors and up to about 15 s when throttled,
// short enough that `walfs sync` reports trouble promptly and the
// replicator's own backoff (1 s to 30 s between uploads) takes over.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:       5,
	BaseDelay:         200 * time.Millisecond,
	ThrottleBaseDelay: time.Second,
	MaxBackoff:        8 * time.Second,
	ResponseTimeout:   2 * time.Minute,
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p == (RetryPolicy{}) {
		return DefaultRetryPolicy
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 1
	}
	return p
}

// Delay returns the backoff before retry number attempt (1 = the first
// retry) after err: "equal jitter", a random duration in [d/2, d] with
// d = min(MaxBackoff, base·2^(attempt-1)), so concurrent clients spread out
// yet each still waits at least half the nominal delay.
func (p RetryPolicy) Delay(attempt int, err error) time.Duration {
	base := p.BaseDelay
	if isThrottle(err) && p.ThrottleBaseDelay > 0 {
		base = p.ThrottleBaseDelay
	}
	d := base
	for i := 1; i < attempt && i < 40 && (p.MaxBackoff <= 0 || d < p.MaxBackoff); i++ {
		d *= 2
	}
	if p.MaxBackoff > 0 && d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

type policyBackoff RetryPolicy

func (b policyBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	return RetryPolicy(b).Delay(attempt, err), nil
}

// throttles are the SDK's throttling checks plus bare 429 and 503 answers
// (HEAD responses carry no error code; S3's SlowDown is a 503).
var throttles = retry.IsErrorThrottles(append([]retry.IsErrorThrottle{
	retry.IsErrorThrottleFunc(func(err error) aws.Ternary {
		if s := httpStatus(err); s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable {
			return aws.TrueTernary
		}
		return aws.UnknownTernary
	}),
}, retry.DefaultThrottles...))

func isThrottle(err error) bool { return err != nil && throttles.IsErrorThrottle(err).Bool() }

// retryable429 retries every 429: the SDK retries it only when the error
// did not deserialize to a modeled error, and S3-compatible stores vary.
var retryable429 = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	if httpStatus(err) == http.StatusTooManyRequests {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
})

// permanentTransport stops retries of failures that cannot heal by
// themselves — an untrusted or mismatched certificate, TLS against a plain
// HTTP server — which the SDK would retry as connection errors, delaying
// the hint that says what to fix.
var permanentTransport = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	var (
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
	)
	if errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) ||
		errors.As(err, &invalidErr) || errors.As(err, &recordErr) || isHTTPToHTTPS(err) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
})

// isHTTPToHTTPS reports Go's error for a plain-HTTP answer to a TLS hello;
// net/http replaces the tls.RecordHeaderError with a plain string.
func isHTTPToHTTPS(err error) bool {
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// newRetryer builds the SDK retryer for p. The SDK's client-side retry quota
// is off: walfs sends few requests and backs off between uploads itself,
// and during an outage the quota would replace the store's real error with
// "retry quota exceeded".
func newRetryer(p RetryPolicy) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = p.MaxAttempts
		o.MaxBackoff = p.MaxBackoff
		o.Backoff = policyBackoff(p)
		o.RateLimiter = ratelimit.None
		o.Retryables = append(append([]retry.IsErrorRetryable{permanentTransport}, o.Retryables...), retryable429)
		o.Throttles = []retry.IsErrorThrottle{throttles}
	})
}

// httpStatus returns the HTTP status of a failed request, or 0.
func httpStatus(err error) int {
	var v interface{ HTTPStatusCode() int }
	if errors.As(err, &v) {
		return v.HTTPStatusCode()
	}
	return 0
}
