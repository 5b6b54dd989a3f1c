package providers

import (
	"maps"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		endpoint  string
		name      string
		pathStyle bool
		region    string
	}{
		{"", "aws", false, "us-east-1"},
		{"s3.amazonaws.com", "aws", false, "us-east-1"},
		{"https://s3.us-west-2.amazonaws.com", "aws", false, "us-west-2"},
		{"s3.dualstack.eu-central-1.amazonaws.com", "aws", false, "eu-central-1"},
		{"s3-fips.us-gov-west-1.amazonaws.com", "aws", false, "us-gov-west-1"},
		{"s3.cn-north-1.amazonaws.com.cn", "aws", false, "cn-north-1"},
		{"https://minio.example.com:9000", "minio", true, "us-east-1"},
		{"http://minio:9000", "minio", true, "us-east-1"},
		{"play.min.io", "minio", true, "us-east-1"},
		{"s3.us-west-004.backblazeb2.com", "b2", true, "us-west-004"},
		{"https://s3.eu-central-003.backblazeb2.com/", "b2", true, "eu-central-003"},
		{"s3.wasabisys.com", "wasabi", false, "us-east-1"},
		{"s3.eu-central-2.wasabisys.com", "wasabi", false, "eu-central-2"},
		{"0123abcd.r2.cloudflarestorage.com", "r2", false, "auto"},
		{"https://0123abcd.eu.r2.cloudflarestorage.com", "r2", false, "auto"},
		{"0123abcd.fedramp.r2.cloudflarestorage.com", "r2", false, "auto"},
		{"nyc3.digitaloceanspaces.com", "digitalocean", false, "nyc3"},
		{"https://fra1.digitaloceanspaces.com", "digitalocean", false, "fra1"},
		{"us-east-1.linodeobjects.com", "linode", false, "us-east-1"},
		{"us-southeast-1.linodeobjects.com", "linode", false, "us-southeast-1"},
		{"mynamespace.compat.objectstorage.us-ashburn-1.oraclecloud.com", "oci", false, "us-ashburn-1"},
		{"https://axaxnpcrorw5.compat.objectstorage.eu-frankfurt-1.oraclecloud.com", "oci", false, "eu-frankfurt-1"},
		{"ewr1.vultrobjects.com", "vultr", false, "ewr1"},
		{"s3.fr-par.scw.cloud", "scaleway", false, "fr-par"},
		{"s3.pl-waw.scw.cloud", "scaleway", false, "pl-waw"},
		{"fly.storage.tigris.dev", "tigris", false, "auto"},
		{"https://t3.storage.dev", "tigris", false, "auto"},
		{"s3.filebase.com", "filebase", true, "us-east-1"},
		{"https://s3.filebase.io", "filebase", true, "us-east-1"},
		{"http://127.0.0.1:9000", "generic", true, "us-east-1"},
		{"localhost:7070", "generic", true, "us-east-1"},
		{"[::1]:9000", "generic", true, "us-east-1"},
		{"s3.internal.example.com", "generic", true, "us-east-1"},
		{"FLY.Storage.Tigris.DEV.", "tigris", false, "auto"},
		// Look-alikes must not match.
		{"r2.cloudflarestorage.com.evil.example", "generic", true, "us-east-1"},
		{"notamazonaws.com", "generic", true, "us-east-1"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			p := Detect(tt.endpoint)
			if p.Name != tt.name {
				t.Fatalf("Detect(%q).Name = %q, want %q", tt.endpoint, p.Name, tt.name)
			}
			if p.PathStyle.Value != tt.pathStyle {
				t.Errorf("PathStyle = %t, want %t", p.PathStyle.Value, tt.pathStyle)
			}
			if p.Region.Value != tt.region {
				t.Errorf("Region = %q, want %q", p.Region.Value, tt.region)
			}
		})
	}
}

// TestRows pins every setting of every row. Changing a provider's behaviour
// means changing this table on purpose.
func TestRows(t *testing.T) {
	type want struct {
		pathStyle, signPayload bool
		region                 string
		headers                map[string]string
		checksum               ChecksumMode
		maxConc                int
		rps                    float64
		cond                   Support
	}
	req := ChecksumWhenRequired
	wants := map[string]want{
		"aws":          {false, true, "us-east-1", nil, ChecksumWhenSupported, 0, 0, SupportYes},
		"minio":        {true, true, "us-east-1", nil, req, 0, 0, SupportYes},
		"b2":           {true, true, "us-west-004", nil, req, 0, 0, SupportNo},
		"wasabi":       {false, true, "us-east-1", nil, req, 0, 0, SupportUnknown},
		"r2":           {false, true, "auto", nil, req, 2, 0, SupportYes},
		"digitalocean": {false, true, "us-east-1", nil, req, 0, 150, SupportUnknown},
		"linode":       {false, true, "us-east-1", nil, req, 0, 0, SupportUnknown},
		"oci":          {false, true, "us-east-1", nil, req, 0, 0, SupportUnknown},
		"vultr":        {false, true, "us-east-1", nil, req, 0, 0, SupportUnknown},
		"scaleway":     {false, true, "fr-par", nil, req, 0, 0, SupportUnknown},
		"tigris":       {false, true, "auto", map[string]string{"X-Tigris-Consistent": "true"}, req, 0, 0, SupportYes},
		"filebase":     {true, true, "us-east-1", nil, req, 0, 100, SupportUnknown},
		"generic":      {true, true, "us-east-1", nil, req, 0, 0, SupportUnknown},
	}
	rows := Rows()
	if len(rows) != len(wants) {
		t.Fatalf("table has %d rows, test knows %d", len(rows), len(wants))
	}
	for _, r := range rows {
		t.Run(r.Name, func(t *testing.T) {
			w, ok := wants[r.Name]
			if !ok {
				t.Fatalf("row %q not covered by this test", r.Name)
			}
			p := r.Profile
			if p.PathStyle.Value != w.pathStyle {
				t.Errorf("PathStyle = %t, want %t", p.PathStyle.Value, w.pathStyle)
			}
			if p.SignPayload.Value != w.signPayload {
				t.Errorf("SignPayload = %t, want %t", p.SignPayload.Value, w.signPayload)
			}
			if p.Region.Value != w.region {
				t.Errorf("Region = %q, want %q", p.Region.Value, w.region)
			}
			if !maps.Equal(p.Headers.Value, w.headers) {
				t.Errorf("Headers = %v, want %v", p.Headers.Value, w.headers)
			}
			if p.Checksum.Value != w.checksum {
				t.Errorf("Checksum = %q, want %q", p.Checksum.Value, w.checksum)
			}
			if p.MaxConcurrency.Value != w.maxConc {
				t.Errorf("MaxConcurrency = %d, want %d", p.MaxConcurrency.Value, w.maxConc)
			}
			if p.MinPartSize.Value != 5*MiB {
				t.Errorf("MinPartSize = %d, want 5 MiB", p.MinPartSize.Value)
			}
			if p.RequestsPerSecond.Value != w.rps {
				t.Errorf("RequestsPerSecond = %g, want %g", p.RequestsPerSecond.Value, w.rps)
			}
			if p.ConditionalWrites.Value != w.cond {
				t.Errorf("ConditionalWrites = %q, want %q", p.ConditionalWrites.Value, w.cond)
			}
			for name, why := range map[string]string{
				"PathStyle": p.PathStyle.Why, "SignPayload": p.SignPayload.Why, "Region": p.Region.Why,
				"Headers": p.Headers.Why, "Checksum": p.Checksum.Why, "MaxConcurrency": p.MaxConcurrency.Why,
				"MinPartSize": p.MinPartSize.Why, "RequestsPerSecond": p.RequestsPerSecond.Why,
				"ConditionalWrites": p.ConditionalWrites.Why,
			} {
				if why == "" || strings.Contains(why, "\n") {
					t.Errorf("%s has no one-line reason: %q", name, why)
				}
			}
			if r.Name != "generic" && len(r.Hosts) == 0 {
				t.Error("row has no host patterns")
			}
			if p.Title == "" {
				t.Error("row has no title")
			}
		})
	}
}

func TestEveryNonAWSRowAvoidsChunkedTrailers(t *testing.T) {
	for _, r := range Rows() {
		if r.Name == "aws" {
			continue
		}
		if r.Checksum.Value != ChecksumWhenRequired {
			t.Errorf("%s: Checksum = %q; every non-AWS store needs %q", r.Name, r.Checksum.Value, ChecksumWhenRequired)
		}
	}
}

func TestWithOverridesWin(t *testing.T) {
	no, yes := false, true
	p := Detect("s3.us-west-004.backblazeb2.com").With(Overrides{PathStyle: &no, SignPayload: &no, Region: "eu-x", Concurrency: 9})
	if p.PathStyle.Value || p.PathStyle.Why != byUser {
		t.Errorf("PathStyle = %+v, want false set by user", p.PathStyle)
	}
	if p.SignPayload.Value || p.SignPayload.Why != byUser {
		t.Errorf("SignPayload = %+v, want false set by user", p.SignPayload)
	}
	if p.Region.Value != "eu-x" {
		t.Errorf("Region = %q, want eu-x", p.Region.Value)
	}
	if p.MaxConcurrency.Value != 9 {
		t.Errorf("MaxConcurrency = %d, want 9", p.MaxConcurrency.Value)
	}
	q := Detect("fly.storage.tigris.dev").With(Overrides{PathStyle: &yes})
	if !q.PathStyle.Value || q.Region.Value != "auto" || q.Headers.Value["X-Tigris-Consistent"] != "true" {
		t.Errorf("With changed unrelated settings: %v", q)
	}
	// Unset overrides change nothing.
	if got, want := Detect("x.r2.cloudflarestorage.com").With(Overrides{}).String(), Detect("x.r2.cloudflarestorage.com").String(); got != want {
		t.Errorf("With(empty) = %s, want %s", got, want)
	}
}

func TestDetectReturnsCopies(t *testing.T) {
	p := Detect("fly.storage.tigris.dev")
	p.Headers.Value["X-Tigris-Consistent"] = "false"
	if got := Detect("fly.storage.tigris.dev").Headers.Value["X-Tigris-Consistent"]; got != "true" {
		t.Fatalf("mutating a detected profile changed the table: header = %q", got)
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"  ":                        "",
		"example.com":               "example.com",
		"Example.COM:443":           "example.com",
		"https://a.b.c/path?x=1":    "a.b.c",
		"http://127.0.0.1:9000":     "127.0.0.1",
		"[::1]:9000":                "::1",
		"https://s3.filebase.com./": "s3.filebase.com",
	} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProfileString(t *testing.T) {
	s := Detect("fly.storage.tigris.dev").String()
	for _, sub := range []string{"tigris", "path-style=false", `region="auto"`, "header[X-Tigris-Consistent]=true"} {
		if !strings.Contains(s, sub) {
			t.Errorf("String() = %s; missing %q", s, sub)
		}
	}
}
