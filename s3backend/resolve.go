package s3backend

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"

	"github.com/walfs/walfs/providers"
)

// Source says where a resolved replica setting came from.
type Source string

// Sources of resolved settings, from the most to the least explicit.
const (
	// SourceConfig is an explicit Config field (a YAML key such as region:).
	SourceConfig Source = "config"
	// SourceURL is the replica URL: its host, path or a query parameter.
	SourceURL Source = "url"
	// SourceEnv is an environment variable (Setting.Why names it).
	SourceEnv Source = "env"
	// SourceDetected is the provider profile detected from the endpoint.
	SourceDetected Source = "detected"
	// SourceDefault is walfs's or the AWS SDK's default.
	SourceDefault Source = "default"
	// SourceAWSChain is the AWS default credential chain (profiles, SSO,
	// instance roles), consulted only when walfs connects.
	SourceAWSChain Source = "aws-chain"
)

// Setting is one resolved value and where it came from.
type Setting[T any] struct {
	Value  T      `json:"value"`
	Source Source `json:"source"`
	// Why explains a detected or default value (the provider profile's
	// one-line reason), or names the environment variable.
	Why string `json:"why,omitempty"`
}

// Credential says whether one credential is set and where from. It never
// holds the value.
type Credential struct {
	Set    bool   `json:"set"`
	Source Source `json:"source"`
	// From names the key or variable: "access-key-id", "WALFS_ACCESS_KEY_ID",
	// "AWS_SECRET_ACCESS_KEY", or "AWS default chain".
	From string `json:"from"`
}

// Credentials describes the credentials a store uses, without their values.
type Credentials struct {
	AccessKeyID     Credential `json:"access_key_id"`
	SecretAccessKey Credential `json:"secret_access_key"`
	SessionToken    bool       `json:"session_token"` // AWS_SESSION_TOKEN is used with the AWS_ pair
}

// String names the credential source for people: "WALFS_ACCESS_KEY_ID/
// WALFS_SECRET_ACCESS_KEY", "access-key-id/secret-access-key in the replica
// config", "the AWS default chain (AWS_PROFILE=x)".
func (c Credentials) String() string {
	switch c.AccessKeyID.Source {
	case SourceConfig:
		return "access-key-id/secret-access-key in the replica config"
	case SourceEnv:
		return c.AccessKeyID.From + "/" + c.SecretAccessKey.From
	}
	return "the " + c.AccessKeyID.From
}

// Resolved is a replica Config after everything New applies to it: URL,
// explicit fields, environment, provider detection and defaults, each value
// with its Source. It holds no secrets. S3 fields are zero for file stores.
type Resolved struct {
	Type string          `json:"type"` // "file" or "s3"
	Path Setting[string] `json:"path"` // the directory (file) or the key prefix (s3)

	Bucket   Setting[string] `json:"bucket,omitzero"`
	Provider Setting[string] `json:"provider,omitzero"` // profile name; Why says how it was detected
	// Endpoint is the URL with scheme requests go to. For AWS without an
	// endpoint it is the regional S3 endpoint the SDK derives.
	Endpoint          Setting[string]                 `json:"endpoint,omitzero"`
	Region            Setting[string]                 `json:"region,omitzero"`
	ForcePathStyle    Setting[bool]                   `json:"force_path_style,omitzero"`
	SignPayload       Setting[bool]                   `json:"sign_payload,omitzero"`
	SkipVerify        Setting[bool]                   `json:"skip_verify,omitzero"`
	CAFile            Setting[string]                 `json:"ca_file,omitzero"`
	PartSize          Setting[int64]                  `json:"part_size,omitzero"`
	Concurrency       Setting[int]                    `json:"concurrency,omitzero"`
	Headers           Setting[[]string]               `json:"headers,omitzero"` // names of the extra headers
	Checksum          Setting[providers.ChecksumMode] `json:"checksum,omitzero"`
	RequestsPerSecond Setting[float64]                `json:"requests_per_second,omitzero"` // 0: no cap
	ConditionalWrites Setting[providers.Support]      `json:"conditional_writes,omitzero"`  // as known; Probe checks
	Credentials       Credentials                     `json:"credentials,omitzero"`

	// Warnings are settings that work but deserve a look (plain http,
	// skip-verify, a half-set credential pair, a region that contradicts the
	// endpoint). New logs them.
	Warnings []string `json:"warnings,omitempty"`

	// Profile is the provider profile with the user's overrides applied.
	Profile providers.Profile `json:"-"`

	awsEndpoint bool // no endpoint: let the SDK resolve AWS's
}

// Resolve applies cfg the way New does and reports where each value came
// from. It contacts nothing. Errors are those New returns for a bad config.
func Resolve(cfg Config) (Resolved, error) {
	r, err := cfg.resolve()
	if err != nil {
		return Resolved{}, err
	}
	src := func(name string) Source { return r.src[name] }
	out := Resolved{Type: r.typ, Path: Setting[string]{Value: r.path, Source: src("path")}}
	if out.Path.Source == "" {
		out.Path = Setting[string]{Source: SourceDefault, Why: "the bucket root"}
	}
	if r.typ == "file" {
		return out, nil
	}
	out.Bucket = Setting[string]{Value: r.bucket, Source: src("bucket")}

	endpoint := Setting[string]{Value: r.endpoint, Source: src("endpoint")}
	if endpoint.Value == "" {
		// The SDK would use these too; detection must see the same endpoint.
		for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
			if v := os.Getenv(env); v != "" {
				endpoint = Setting[string]{Value: v, Source: SourceEnv, Why: env}
				break
			}
		}
	}
	if endpoint.Value, err = normalizeEndpoint(endpoint.Value); err != nil {
		return Resolved{}, err
	}
	detected, pattern := providers.Lookup(endpoint.Value)
	p := detected.With(providers.Overrides{
		PathStyle:   r.forcePathStyle,
		SignPayload: r.signPayload,
		Region:      r.region,
		Concurrency: cfg.Concurrency,
	})
	out.Profile = p
	out.Provider = Setting[string]{Value: p.Name, Source: SourceDetected, Why: p.Title}
	switch {
	case endpoint.Value == "":
		out.Provider.Source, out.Provider.Why = SourceDefault, p.Title+": no endpoint is set"
	case pattern == providers.Host(endpoint.Value):
		out.Provider.Why = fmt.Sprintf("%s: its endpoint %s", p.Title, pattern)
	case pattern != "":
		out.Provider.Why = fmt.Sprintf("%s: %s matches %s", p.Title, providers.Host(endpoint.Value), pattern)
	default:
		out.Provider.Why = p.Title + ": no provider pattern matches " + providers.Host(endpoint.Value)
	}

	out.Region = Setting[string]{Value: r.region, Source: src("region")}
	if r.region == "" {
		out.Region = detectedSetting(p.Region)
		if endpoint.Value == "" {
			out.Region = Setting[string]{Value: p.Region.Value, Source: SourceDefault,
				Why: "unless AWS_PROFILE or ~/.aws/config names a region"}
			for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
				if v := os.Getenv(env); v != "" {
					out.Region = Setting[string]{Value: v, Source: SourceEnv, Why: env}
					break
				}
			}
		}
	} else if detected.Region.Why == providers.RegionFromHostWhy && r.region != detected.Region.Value {
		out.Warnings = append(out.Warnings, fmt.Sprintf("region %s differs from %s in the endpoint host: most stores reject requests signed for another region", r.region, detected.Region.Value))
	}
	if endpoint.Value == "" {
		out.awsEndpoint = true
		endpoint = Setting[string]{Value: "https://s3." + out.Region.Value + ".amazonaws.com", Source: SourceDefault,
			Why: "Amazon S3; the SDK resolves the exact host (virtual-hosted: <bucket>.s3.<region>.amazonaws.com)"}
	}
	out.Endpoint = endpoint

	out.ForcePathStyle = userOr(p.PathStyle, src("force-path-style"))
	out.SignPayload = userOr(p.SignPayload, src("sign-payload"))
	out.SkipVerify = Setting[bool]{Value: r.skipVerify != nil && *r.skipVerify, Source: SourceDefault}
	if s := src("skip-verify"); s != "" {
		out.SkipVerify.Source = s
	}
	out.CAFile = Setting[string]{Value: r.caFile, Source: src("ca-file")}
	if r.caFile == "" {
		out.CAFile.Source = SourceDefault
	}
	if b := os.Getenv("AWS_CA_BUNDLE"); b != "" {
		out.CAFile.Why = "AWS_CA_BUNDLE=" + b + " is trusted as well"
	}

	out.PartSize = Setting[int64]{Value: cfg.PartSize, Source: SourceConfig}
	if cfg.PartSize == 0 {
		out.PartSize = Setting[int64]{Value: max(p.MinPartSize.Value, manager.MinUploadPartSize), Source: SourceDefault, Why: p.MinPartSize.Why}
	}
	out.Concurrency = Setting[int]{Value: cfg.Concurrency, Source: SourceConfig}
	if cfg.Concurrency == 0 {
		out.Concurrency = Setting[int]{Value: manager.DefaultUploadConcurrency, Source: SourceDefault, Why: "parts in flight per multipart upload"}
		if c := p.MaxConcurrency.Value; c > 0 && c < manager.DefaultUploadConcurrency {
			out.Concurrency = detectedSetting(p.MaxConcurrency)
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range p.Headers.Value {
			if !yield(k) {
				return
			}
		}
	})
	if names == nil {
		names = []string{} // [] rather than null in JSON
	}
	out.Headers = Setting[[]string]{Value: names, Source: SourceDetected, Why: p.Headers.Why}
	out.Checksum = detectedSetting(p.Checksum)
	out.RequestsPerSecond = detectedSetting(p.RequestsPerSecond)
	out.ConditionalWrites = detectedSetting(p.ConditionalWrites)

	_, out.Credentials = pickCredentials(r.accessKey, r.secretKey)
	out.Warnings = append(out.Warnings, credentialWarnings()...)
	if strings.HasPrefix(out.Endpoint.Value, "http://") {
		out.Warnings = append(out.Warnings, "replica endpoint uses plain http: data and signed requests travel unencrypted")
	}
	if out.SkipVerify.Value {
		out.Warnings = append(out.Warnings, "skip-verify is on: TLS certificates are not checked (development only)")
	}
	return out, nil
}

func detectedSetting[T any](s providers.Setting[T]) Setting[T] {
	return Setting[T]{Value: s.Value, Source: SourceDetected, Why: s.Why}
}

// userOr is the profile's value, which Profile.With already replaced when
// the user set one (src is then SourceConfig or SourceURL).
func userOr[T any](s providers.Setting[T], src Source) Setting[T] {
	if src != "" {
		return Setting[T]{Value: s.Value, Source: src}
	}
	return detectedSetting(s)
}

// credentialPairs are checked in order; the first complete pair wins.
var credentialPairs = [][2]string{
	{EnvAccessKeyID, EnvSecretAccessKey},
	{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
}

// pickCredentials applies the precedence: explicit config, WALFS_ env, AWS_
// env, then nil (the AWS default chain: shared files, SSO, IMDS, ...).
func pickCredentials(accessKey, secretKey string) (aws.CredentialsProvider, Credentials) {
	if accessKey != "" && secretKey != "" {
		return credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""), Credentials{
			AccessKeyID:     Credential{Set: true, Source: SourceConfig, From: "access-key-id"},
			SecretAccessKey: Credential{Set: true, Source: SourceConfig, From: "secret-access-key"},
		}
	}
	for _, pair := range credentialPairs {
		id, secret := os.Getenv(pair[0]), os.Getenv(pair[1])
		if id == "" || secret == "" {
			continue
		}
		session := ""
		if strings.HasPrefix(pair[0], "AWS_") {
			session = os.Getenv("AWS_SESSION_TOKEN")
		}
		return credentials.NewStaticCredentialsProvider(id, secret, session), Credentials{
			AccessKeyID:     Credential{Set: true, Source: SourceEnv, From: pair[0]},
			SecretAccessKey: Credential{Set: true, Source: SourceEnv, From: pair[1]},
			SessionToken:    session != "",
		}
	}
	chain := "AWS default chain"
	if p := os.Getenv("AWS_PROFILE"); p != "" {
		chain += " (AWS_PROFILE=" + p + ")"
	}
	c := Credential{Source: SourceAWSChain, From: chain}
	return nil, Credentials{AccessKeyID: c, SecretAccessKey: c}
}

// credentialWarnings reports environment pairs with one half missing, which
// pickCredentials skips without a word.
func credentialWarnings() []string {
	var out []string
	for _, pair := range credentialPairs {
		id, secret := os.Getenv(pair[0]) != "", os.Getenv(pair[1]) != ""
		if id != secret {
			set, unset := pair[0], pair[1]
			if secret {
				set, unset = unset, set
			}
			out = append(out, fmt.Sprintf("%s is set but %s is not: walfs ignores both", set, unset))
		}
	}
	return out
}

// New returns the store described by cfg. It does not contact the store;
// call Init. Errors are one line and carry a hint (see Hint).
func New(ctx context.Context, cfg Config, logger *slog.Logger) (Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r, err := Resolve(cfg)
	if err != nil {
		return nil, err
	}
	if r.Type == "file" {
		return NewFileStore(r.Path.Value), nil
	}
	creds, _ := pickCredentials(cfg.AccessKeyID, cfg.SecretAccessKey)
	logger = logger.With("replica", "s3://"+r.Bucket.Value+"/"+r.Path.Value)
	for _, w := range r.Warnings {
		logger.Warn(w, "endpoint", r.Endpoint.Value)
	}
	logger.Debug("s3 provider profile", "profile", r.Profile.String(), "credentials", r.Credentials.String())
	return NewS3Store(ctx, r.options(cfg, creds, logger))
}

// options turns r into the store options; creds comes from pickCredentials.
func (r Resolved) options(cfg Config, creds aws.CredentialsProvider, logger *slog.Logger) S3Options {
	o := S3Options{
		Bucket:           r.Bucket.Value,
		Path:             r.Path.Value,
		Endpoint:         r.Endpoint.Value,
		Region:           r.Region.Value,
		Profile:          r.Profile,
		Credentials:      creds,
		CredentialSource: r.Credentials.String(),
		CAFile:           r.CAFile.Value,
		SkipVerify:       r.SkipVerify.Value,
		PartSize:         cfg.PartSize,
		Concurrency:      cfg.Concurrency,
		Logger:           logger,
	}
	if r.awsEndpoint {
		o.Endpoint = ""
		if r.Region.Source == SourceDefault {
			o.Region = "" // the SDK's chain (profile) first, then the profile default
		}
	}
	return o
}
