package providers

// Row is one provider: the endpoint hosts it answers on and its profile.
type Row struct {
	// Hosts are path.Match patterns over the lower-case endpoint host (no
	// port). "*" matches any run of characters, dots included, so
	// "*.r2.cloudflarestorage.com" also matches jurisdiction endpoints like
	// "<account>.eu.r2.cloudflarestorage.com".
	Hosts []string
	// RegionFromHost, if set, is a regexp whose first group extracts the
	// signing region from the host; it wins over Profile.Region's default.
	RegionFromHost string
	Profile
}

// Reasons shared by many rows.
const (
	whyChecksumNonAWS = "the SDK's default aws-chunked bodies with a CRC32 trailer break non-AWS stores (MalformedTrailerError, MissingContentLength)"
	whyMinPart        = "S3 multipart rejects parts under 5 MiB except the last"
	whySignPayload    = "a signed SHA-256 of the body lets the store reject corrupted uploads; plain bodies need it since there is no checksum trailer"
	whyNoRateCap      = "no published request-rate limit that one database can reach"
	whyNoConcCap      = "no known multipart concurrency limit"
	whyNoHeaders      = "no provider-specific headers needed"
	whyVirtualHost    = "virtual-hosted style is the provider's default and preferred addressing"
	whyCondUnknown    = "not documented or not tried; probe before relying on conditional writes"
	whyRegionUSEast1  = "the provider ignores the region but the SDK needs one to sign; us-east-1 is accepted"
)

var awsRow = Row{
	Hosts:          []string{"s3.amazonaws.com", "*.amazonaws.com", "*.amazonaws.com.cn"},
	RegionFromHost: `^(?:.*\.)?s3[.-](?:dualstack\.|fips\.)*([a-z]{2}(?:-gov)?-[a-z]+-\d)\.amazonaws\.com(?:\.cn)?$`,
	Profile: Profile{
		Name: "aws", Title: "Amazon S3",
		PathStyle:         set(false, "AWS deprecated path-style addressing; virtual-hosted works for every DNS-compatible bucket"),
		SignPayload:       set(true, "leave payload hashing to the SDK: AWS rejects aws-chunked bodies sent with UNSIGNED-PAYLOAD"),
		Region:            set("us-east-1", "the SDK's region chain (AWS_REGION, profile) usually wins; us-east-1 redirects to the bucket's region otherwise"),
		Headers:           set[map[string]string](nil, whyNoHeaders),
		Checksum:          set(ChecksumWhenSupported, "AWS verifies the CRC32 trailer, giving end-to-end integrity at no cost"),
		MaxConcurrency:    set(0, whyNoConcCap),
		MinPartSize:       set[int64](5*MiB, whyMinPart),
		RequestsPerSecond: set(0.0, "3,500 PUT/s per prefix is far above what walfs sends"),
		ConditionalWrites: set(SupportYes, "If-None-Match and If-Match on PUT are supported since 2024"),
	},
}

// genericRow is used for endpoints no row matches (self-hosted MinIO on
// localhost, versitygw, Ceph, Garage, ...).
var genericRow = Row{
	Profile: Profile{
		Name: "generic", Title: "S3-compatible (unrecognized endpoint)",
		PathStyle:         set(true, "custom endpoints (IPs, localhost, internal names) rarely have wildcard DNS for bucket subdomains"),
		SignPayload:       set(true, whySignPayload),
		Region:            set("us-east-1", whyRegionUSEast1),
		Headers:           set[map[string]string](nil, whyNoHeaders),
		Checksum:          set(ChecksumWhenRequired, whyChecksumNonAWS+"; older MinIO and Ceph included"),
		MaxConcurrency:    set(0, whyNoConcCap),
		MinPartSize:       set[int64](5*MiB, whyMinPart),
		RequestsPerSecond: set(0.0, "unknown; no cap by default"),
		ConditionalWrites: set(SupportUnknown, "s3rver ignores the headers silently and Ceph 16 matches only unquoted ETags; probe first"),
	},
}

// table holds every known provider except AWS and generic, most specific
// hosts first. Detect uses the first row with a matching host.
var table = []Row{
	awsRow,
	{
		Hosts: []string{"minio", "minio.*", "*.minio.*", "*.min.io"},
		Profile: Profile{
			Name: "minio", Title: "MinIO",
			PathStyle:         set(true, "self-hosted MinIO rarely has wildcard DNS for bucket subdomains"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-east-1", "MinIO ignores the region unless configured; us-east-1 is its default"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, "older MinIO releases reject aws-chunked trailers; plain bodies work on all"),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportYes, "If-None-Match and If-Match on PUT are supported"),
		},
	},
	{
		Hosts:          []string{"*.backblazeb2.com"},
		RegionFromHost: `^(?:.*\.)?s3\.([a-z0-9-]+)\.backblazeb2\.com$`,
		Profile: Profile{
			Name: "b2", Title: "Backblaze B2",
			PathStyle:         set(true, "B2's S3 API needs path-style requests"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-west-004", "must match the bucket's region; taken from s3.<region>.backblazeb2.com"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, "B2 answers aws-chunked trailers with MalformedTrailerError"),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, "B2 requires at least 5 MB parts except the last"),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportNo, "B2 answers If-None-Match/If-Match on PUT with 501 NotImplemented"),
		},
	},
	{
		Hosts:          []string{"*.wasabisys.com"},
		RegionFromHost: `^(?:.*\.)?s3\.([a-z]{2}-[a-z]+-\d)\.wasabisys\.com$`,
		Profile: Profile{
			Name: "wasabi", Title: "Wasabi",
			PathStyle:         set(false, "Wasabi supports virtual-hosted style like AWS"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-east-1", "s3.wasabisys.com is us-east-1; regional endpoints carry their region"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, whyChecksumNonAWS),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
	{
		Hosts: []string{"*.r2.cloudflarestorage.com"},
		Profile: Profile{
			Name: "r2", Title: "Cloudflare R2",
			PathStyle:         set(false, "R2 accepts both; virtual-hosted matches its documented endpoints"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("auto", "R2 signs with region auto (us-east-1 is an alias)"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, "R2 rejects the SDK's aws-chunked trailer bodies"),
			MaxConcurrency:    set(2, "R2 fails or throttles multipart uploads with more than 2 concurrent parts"),
			MinPartSize:       set[int64](5*MiB, "R2 requires equal parts of at least 5 MiB except the last"),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportYes, "If-None-Match and If-Match on PUT are supported"),
		},
	},
	{
		Hosts:          []string{"*.digitaloceanspaces.com"},
		RegionFromHost: `^(?:.*\.)?([a-z]{3}\d)\.digitaloceanspaces\.com$`,
		Profile: Profile{
			Name: "digitalocean", Title: "DigitalOcean Spaces",
			PathStyle:         set(false, "Spaces prefers virtual-hosted style"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-east-1", "regional endpoints carry their region (nyc3, ...); us-east-1 is accepted otherwise"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, whyChecksumNonAWS),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(150.0, "Spaces allows 150 writes/s per Space; capping every request there keeps bursts clear of 503 SlowDown"),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
	{
		Hosts:          []string{"*.linodeobjects.com"},
		RegionFromHost: `^(?:.*\.)?([a-z]{2}-[a-z]+-\d)\.linodeobjects\.com$`,
		Profile: Profile{
			Name: "linode", Title: "Linode (Akamai) Object Storage",
			PathStyle:         set(false, whyVirtualHost),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-east-1", "regional endpoints carry their region; us-east-1 is Newark"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, "Linode rejects the SDK's aws-chunked trailer bodies"),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
	{
		Hosts:          []string{"*.compat.objectstorage.*.oraclecloud.com"},
		RegionFromHost: `^.+\.compat\.objectstorage\.([a-z]{2}-[a-z]+-\d)\.oraclecloud\.com$`,
		Profile: Profile{
			Name: "oci", Title: "Oracle Cloud Infrastructure Object Storage",
			PathStyle:         set(false, "OCI accepts virtual-hosted style now, and path-style too"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-east-1", "the region in <ns>.compat.objectstorage.<region>.oraclecloud.com is used; us-east-1 only when it cannot be read"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, whyChecksumNonAWS),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
	{
		Hosts:          []string{"*.vultrobjects.com"},
		RegionFromHost: `^(?:.*\.)?([a-z]{3}\d)\.vultrobjects\.com$`,
		Profile: Profile{
			Name: "vultr", Title: "Vultr Object Storage",
			PathStyle:         set(false, whyVirtualHost),
			SignPayload:       set(true, whySignPayload),
			Region:            set("us-east-1", "regional endpoints carry their region (ewr1, ...); us-east-1 is accepted otherwise"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, whyChecksumNonAWS),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
	{
		Hosts:          []string{"*.scw.cloud"},
		RegionFromHost: `^(?:.*\.)?s3\.([a-z]{2}-[a-z]{3})\.scw\.cloud$`,
		Profile: Profile{
			Name: "scaleway", Title: "Scaleway Object Storage",
			PathStyle:         set(false, whyVirtualHost),
			SignPayload:       set(true, whySignPayload),
			Region:            set("fr-par", "must match the endpoint; taken from s3.<region>.scw.cloud, fr-par otherwise"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, "Scaleway answers aws-chunked bodies with MissingContentLength"),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
	{
		Hosts: []string{"fly.storage.tigris.dev", "*.tigris.dev", "t3.storage.dev", "*.t3.storage.dev"},
		Profile: Profile{
			Name: "tigris", Title: "Tigris (Fly.io)",
			PathStyle:         set(false, "Tigris serves virtual-hosted buckets"),
			SignPayload:       set(true, whySignPayload),
			Region:            set("auto", "Tigris is global and signs with region auto"),
			Headers:           set(map[string]string{"X-Tigris-Consistent": "true"}, "without it a read or list right after a write may miss it (eventual consistency across regions)"),
			Checksum:          set(ChecksumWhenRequired, whyChecksumNonAWS),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(0.0, whyNoRateCap),
			ConditionalWrites: set(SupportYes, "If-None-Match and If-Match on PUT are supported (with the consistency header)"),
		},
	},
	{
		Hosts: []string{"s3.filebase.com", "s3.filebase.io", "*.filebase.com", "*.filebase.io"},
		Profile: Profile{
			Name: "filebase", Title: "Filebase",
			PathStyle:         set(true, "Filebase needs path-style requests"),
			SignPayload:       set(true, "Filebase only supports SigV4 with a signed payload"),
			Region:            set("us-east-1", "Filebase requires region us-east-1"),
			Headers:           set[map[string]string](nil, whyNoHeaders),
			Checksum:          set(ChecksumWhenRequired, "Filebase rejects the SDK's aws-chunked trailer bodies"),
			MaxConcurrency:    set(0, whyNoConcCap),
			MinPartSize:       set[int64](5*MiB, whyMinPart),
			RequestsPerSecond: set(100.0, "Filebase documents 100 requests/s (newer docs: 500); stay under the older limit"),
			ConditionalWrites: set(SupportUnknown, whyCondUnknown),
		},
	},
}

// Rows returns a copy of the provider table, AWS first, followed by the
// generic row used for unknown endpoints.
func Rows() []Row {
	out := make([]Row, 0, len(table)+1)
	for _, r := range append(table[:len(table):len(table)], genericRow) {
		r.Profile = r.Profile.clone()
		r.Hosts = append([]string(nil), r.Hosts...)
		out = append(out, r)
	}
	return out
}
