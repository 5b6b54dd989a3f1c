package providers

import (
	"fmt"
	"maps"
	"strings"
)

// Setting is one value of a profile with the reason it has that value: the
// failure it prevents, or where it came from ("set by user").
type Setting[T any] struct {
	Value T
	Why   string
}

func set[T any](v T, why string) Setting[T] { return Setting[T]{Value: v, Why: why} }

// ChecksumMode says when the S3 client computes request checksums and
// validates response checksums.
type ChecksumMode string

const (
	// ChecksumWhenSupported is the AWS SDK default: every upload carries a
	// checksum, streamed as an aws-chunked body with a trailer over HTTPS.
	ChecksumWhenSupported ChecksumMode = "when_supported"
	// ChecksumWhenRequired sends checksums only for operations that require
	// them, so bodies are plain (no aws-chunked, no x-amz-trailer).
	ChecksumWhenRequired ChecksumMode = "when_required"
)

// Support is whether a provider is known to support a feature.
type Support string

const (
	SupportUnknown Support = "unknown" // probe before relying on it
	SupportYes     Support = "yes"
	SupportNo      Support = "no"
)

// MiB is 1<<20 bytes.
const MiB = 1 << 20

// Profile is what walfs must do to talk to one S3 provider.
type Profile struct {
	// Name is a stable identifier ("aws", "r2", "generic", ...).
	Name string
	// Title is the provider's name for people.
	Title string

	// PathStyle selects https://host/bucket/key over https://bucket.host/key.
	PathStyle Setting[bool]
	// SignPayload signs the SHA-256 of each body; false sends UNSIGNED-PAYLOAD.
	SignPayload Setting[bool]
	// Region is the signing region used when none is configured.
	Region Setting[string]
	// Headers are added to every request.
	Headers Setting[map[string]string]
	// Checksum is the SDK's request checksum calculation and response
	// validation mode.
	Checksum Setting[ChecksumMode]
	// MaxConcurrency caps concurrent multipart part uploads (0: no cap).
	MaxConcurrency Setting[int]
	// MinPartSize is the smallest multipart part the provider accepts.
	MinPartSize Setting[int64]
	// RequestsPerSecond caps the request rate (0: no cap).
	RequestsPerSecond Setting[float64]
	// ConditionalWrites is whether If-None-Match/If-Match on PUT work.
	ConditionalWrites Setting[Support]
}

// clone returns p with its own copy of the header map.
func (p Profile) clone() Profile {
	p.Headers.Value = maps.Clone(p.Headers.Value)
	return p
}

// String lists the profile's settings on one line (no secrets in a profile).
func (p Profile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: path-style=%t sign-payload=%t region=%q checksum=%s", p.Name,
		p.PathStyle.Value, p.SignPayload.Value, p.Region.Value, p.Checksum.Value)
	if p.MaxConcurrency.Value > 0 {
		fmt.Fprintf(&b, " max-concurrency=%d", p.MaxConcurrency.Value)
	}
	if p.RequestsPerSecond.Value > 0 {
		fmt.Fprintf(&b, " max-rps=%g", p.RequestsPerSecond.Value)
	}
	for _, k := range sortedKeys(p.Headers.Value) {
		fmt.Fprintf(&b, " header[%s]=%s", k, p.Headers.Value[k])
	}
	fmt.Fprintf(&b, " conditional-writes=%s", p.ConditionalWrites.Value)
	return b.String()
}

// Overrides are settings the user gave explicitly. They always win over
// detection: nil pointers and zero values mean "not set".
type Overrides struct {
	PathStyle   *bool
	SignPayload *bool
	Region      string
	Concurrency int
}

const byUser = "set by user"

// With returns p with the user's explicit settings applied.
func (p Profile) With(o Overrides) Profile {
	p = p.clone()
	if o.PathStyle != nil {
		p.PathStyle = set(*o.PathStyle, byUser)
	}
	if o.SignPayload != nil {
		p.SignPayload = set(*o.SignPayload, byUser)
	}
	if o.Region != "" {
		p.Region = set(o.Region, byUser)
	}
	if o.Concurrency > 0 {
		p.MaxConcurrency = set(o.Concurrency, byUser)
	}
	return p
}
