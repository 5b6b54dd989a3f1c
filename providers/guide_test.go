package providers

import (
	"maps"
	"testing"
)

// TestGuideEndpoints checks every endpoint example in the guide our users
// configure from (shared/seed/s3-compatible-services.md: the provider
// sections, their regional tables and the advanced options) against the
// settings the guide says are auto-detected, plus the region walfs signs
// with when the user sets none.
//
// Where walfs deliberately differs from the guide, the row says so:
//   - OCI: the guide suggests region us-east-1 for clients that cannot take
//     OCI region identifiers; walfs can, and signs with the region in
//     <ns>.compat.objectstorage.<region>.oraclecloud.com.
//   - Wasabi, Linode, Vultr, OCI: not auto-detected by Litestream; walfs
//     detects them to turn off the SDK's aws-chunked trailers (NOTES §4).
func TestGuideEndpoints(t *testing.T) {
	type want struct {
		provider  string
		pathStyle bool
		region    string
		header    string // extra header name, "" for none
		rps       float64
		maxConc   int
		cond      Support
	}
	var (
		b2       = func(r string) want { return want{"b2", true, r, "", 0, 0, SupportNo} }
		wasabi   = func(r string) want { return want{"wasabi", false, r, "", 0, 0, SupportUnknown} }
		do       = func(r string) want { return want{"digitalocean", false, r, "", 150, 0, SupportUnknown} }
		linode   = func(r string) want { return want{"linode", false, r, "", 0, 0, SupportUnknown} }
		oci      = func(r string) want { return want{"oci", false, r, "", 0, 0, SupportUnknown} }
		vultr    = func(r string) want { return want{"vultr", false, r, "", 0, 0, SupportUnknown} }
		scaleway = func(r string) want { return want{"scaleway", false, r, "", 0, 0, SupportUnknown} }
		minio    = want{"minio", true, "us-east-1", "", 0, 0, SupportYes}
		r2       = want{"r2", false, "auto", "", 0, 2, SupportYes}
		tigris   = want{"tigris", false, "auto", "X-Tigris-Consistent", 0, 0, SupportYes}
		filebase = want{"filebase", true, "us-east-1", "", 100, 0, SupportUnknown}
		generic  = want{"generic", true, "us-east-1", "", 0, 0, SupportUnknown}
		aws      = want{"aws", false, "us-east-1", "", 0, 0, SupportYes}
	)
	tests := []struct {
		endpoint string
		want     want
	}{
		// AWS S3: no endpoint.
		{"", aws},
		// "Default HTTPS Behavior" and the advanced options.
		{"s3.provider.com", generic},
		{"https://s3.provider.com", generic},
		{"http://localhost:9000", generic},
		{"https://minio.local:9000", minio},
		// MinIO.
		{"https://minio.example.com:9000", minio},
		// Backblaze B2.
		{"s3.us-west-004.backblazeb2.com", b2("us-west-004")},
		// Wasabi: the example and the regional table.
		{"s3.us-west-1.wasabisys.com", wasabi("us-west-1")},
		{"s3.us-east-1.wasabisys.com", wasabi("us-east-1")},
		{"s3.us-east-2.wasabisys.com", wasabi("us-east-2")},
		{"s3.eu-central-1.wasabisys.com", wasabi("eu-central-1")},
		{"s3.eu-central-2.wasabisys.com", wasabi("eu-central-2")},
		{"s3.eu-west-1.wasabisys.com", wasabi("eu-west-1")},
		{"s3.eu-west-2.wasabisys.com", wasabi("eu-west-2")},
		{"s3.ap-northeast-1.wasabisys.com", wasabi("ap-northeast-1")},
		{"s3.ap-northeast-2.wasabisys.com", wasabi("ap-northeast-2")},
		{"s3.ap-southeast-1.wasabisys.com", wasabi("ap-southeast-1")},
		{"s3.ap-southeast-2.wasabisys.com", wasabi("ap-southeast-2")},
		// Cloudflare R2, with the EU jurisdiction endpoint.
		{"0123456789abcdef.r2.cloudflarestorage.com", r2},
		{"0123456789abcdef.eu.r2.cloudflarestorage.com", r2},
		// DigitalOcean Spaces.
		{"nyc3.digitaloceanspaces.com", do("nyc3")},
		{"sfo3.digitaloceanspaces.com", do("sfo3")},
		{"ams3.digitaloceanspaces.com", do("ams3")},
		{"sgp1.digitaloceanspaces.com", do("sgp1")},
		{"fra1.digitaloceanspaces.com", do("fra1")},
		{"syd1.digitaloceanspaces.com", do("syd1")},
		// Linode.
		{"us-east-1.linodeobjects.com", linode("us-east-1")},
		{"us-southeast-1.linodeobjects.com", linode("us-southeast-1")},
		{"us-central-1.linodeobjects.com", linode("us-central-1")},
		{"eu-central-1.linodeobjects.com", linode("eu-central-1")},
		{"ap-south-1.linodeobjects.com", linode("ap-south-1")},
		// OCI.
		{"mynamespace.compat.objectstorage.us-phoenix-1.oraclecloud.com", oci("us-phoenix-1")},
		{"mynamespace.compat.objectstorage.us-ashburn-1.oraclecloud.com", oci("us-ashburn-1")},
		{"mynamespace.compat.objectstorage.eu-frankfurt-1.oraclecloud.com", oci("eu-frankfurt-1")},
		// Vultr.
		{"ewr1.vultrobjects.com", vultr("ewr1")},
		{"lax1.vultrobjects.com", vultr("lax1")},
		{"sgp1.vultrobjects.com", vultr("sgp1")},
		{"ams1.vultrobjects.com", vultr("ams1")},
		{"blr1.vultrobjects.com", vultr("blr1")},
		{"del1.vultrobjects.com", vultr("del1")},
		{"hnl1.vultrobjects.com", vultr("hnl1")},
		// Scaleway.
		{"s3.fr-par.scw.cloud", scaleway("fr-par")},
		{"s3.nl-ams.scw.cloud", scaleway("nl-ams")},
		{"s3.pl-waw.scw.cloud", scaleway("pl-waw")},
		// Tigris and Filebase.
		{"fly.storage.tigris.dev", tigris},
		{"s3.filebase.com", filebase},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			p := Detect(tt.endpoint)
			w := tt.want
			if p.Name != w.provider {
				t.Fatalf("provider = %q, want %q", p.Name, w.provider)
			}
			// The guide's "Auto-detected Settings": every detected provider
			// signs payloads; B2, Filebase and MinIO also use path-style.
			if !p.SignPayload.Value {
				t.Errorf("sign-payload = false, want true")
			}
			if p.PathStyle.Value != w.pathStyle {
				t.Errorf("force-path-style = %t, want %t", p.PathStyle.Value, w.pathStyle)
			}
			if p.Region.Value != w.region {
				t.Errorf("region = %q, want %q", p.Region.Value, w.region)
			}
			var headers []string
			for k := range maps.Keys(p.Headers.Value) {
				headers = append(headers, k)
			}
			if (w.header == "" && len(headers) != 0) || (w.header != "" && (len(headers) != 1 || headers[0] != w.header)) {
				t.Errorf("headers = %v, want %q", headers, w.header)
			}
			wantChecksum := ChecksumWhenRequired
			if w.provider == "aws" {
				wantChecksum = ChecksumWhenSupported
			}
			if p.Checksum.Value != wantChecksum {
				t.Errorf("checksum = %q, want %q", p.Checksum.Value, wantChecksum)
			}
			if p.RequestsPerSecond.Value != w.rps {
				t.Errorf("requests/s cap = %g, want %g", p.RequestsPerSecond.Value, w.rps)
			}
			if p.MaxConcurrency.Value != w.maxConc {
				t.Errorf("concurrency cap = %d, want %d", p.MaxConcurrency.Value, w.maxConc)
			}
			if p.ConditionalWrites.Value != w.cond {
				t.Errorf("conditional writes = %q, want %q", p.ConditionalWrites.Value, w.cond)
			}
			if p.MinPartSize.Value != 5*MiB {
				t.Errorf("min part size = %d, want 5 MiB", p.MinPartSize.Value)
			}
		})
	}
}

func TestLookupNamesThePattern(t *testing.T) {
	for endpoint, want := range map[string]string{
		"":                               "",
		"s3.us-west-004.backblazeb2.com": "*.backblazeb2.com",
		"fly.storage.tigris.dev":         "fly.storage.tigris.dev",
		"https://minio.example.com:9000": "minio.*",
		"127.0.0.1:9000":                 "",
	} {
		if _, got := Lookup(endpoint); got != want {
			t.Errorf("Lookup(%q) pattern = %q, want %q", endpoint, got, want)
		}
	}
}
