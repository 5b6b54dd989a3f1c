package s3backend_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
)

func pemCert(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestWireProfiles drives a Write (small and multipart), List, Open and
// Delete through New for each provider's endpoint and checks what reached
// the server: addressing style, payload signing, no aws-chunked bodies for
// non-AWS stores, provider headers, region and metadata.
func TestWireProfiles(t *testing.T) {
	f := false
	tests := []struct {
		name        string
		endpoint    string
		signPayload *bool
		virtualHost bool
		unsigned    bool   // X-Amz-Content-Sha256: UNSIGNED-PAYLOAD on PUTs
		trailer     bool   // aws-chunked body with a checksum trailer (AWS only)
		region      string // in the credential scope
		header      [2]string
		maxParts    int32 // 0: no cap to check
	}{
		{name: "generic", endpoint: "", region: "us-east-1"},
		{name: "minio", endpoint: "https://minio.example.com:9000", region: "us-east-1"},
		{name: "b2", endpoint: "s3.us-west-004.backblazeb2.com", region: "us-west-004"},
		{name: "filebase", endpoint: "s3.filebase.com", region: "us-east-1"},
		{name: "r2", endpoint: "acct123.r2.cloudflarestorage.com", virtualHost: true, region: "auto", maxParts: 2},
		{name: "r2-eu", endpoint: "acct123.eu.r2.cloudflarestorage.com", virtualHost: true, region: "auto", maxParts: 2},
		{name: "tigris", endpoint: "fly.storage.tigris.dev", virtualHost: true, region: "auto", header: [2]string{"X-Tigris-Consistent", "true"}},
		{name: "tigris-t3", endpoint: "t3.storage.dev", virtualHost: true, region: "auto", header: [2]string{"X-Tigris-Consistent", "true"}},
		{name: "digitalocean", endpoint: "nyc3.digitaloceanspaces.com", virtualHost: true, region: "nyc3"},
		{name: "scaleway", endpoint: "s3.fr-par.scw.cloud", virtualHost: true, region: "fr-par"},
		{name: "oci", endpoint: "ns1.compat.objectstorage.us-ashburn-1.oraclecloud.com", virtualHost: true, region: "us-ashburn-1"},
		{name: "wasabi", endpoint: "s3.eu-central-1.wasabisys.com", virtualHost: true, region: "eu-central-1"},
		{name: "linode", endpoint: "us-east-1.linodeobjects.com", virtualHost: true, region: "us-east-1"},
		{name: "vultr", endpoint: "ewr1.vultrobjects.com", virtualHost: true, region: "ewr1"},
		{name: "generic-unsigned", endpoint: "", signPayload: &f, unsigned: true, region: "us-east-1"},
		{name: "aws", endpoint: "s3.us-west-2.amazonaws.com", virtualHost: true, trailer: true, region: "us-west-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeS3(t, "bkt")
			restore := s3backend.SetDialOverride(fake.dialAll)
			t.Cleanup(restore)
			endpoint := tt.endpoint
			if endpoint == "" {
				endpoint = fake.srv.URL // https://127.0.0.1:port: the generic profile
			}
			cfg := s3backend.Config{
				Type: "s3", Bucket: "bkt", Path: "replica", Endpoint: endpoint,
				AccessKeyID: "AKIDTEST", SecretAccessKey: "secret",
				SignPayload: tt.signPayload,
				CAFile:      fake.caFile,
			}
			if tt.endpoint != "" {
				// The fake's certificate names 127.0.0.1, not provider hosts.
				tr := true
				cfg.SkipVerify = &tr
			}
			store, err := s3backend.New(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			created := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
			small := s3backend.FileInfo{DB: "app.db", Level: 0, MinTXID: 1, MaxTXID: 1, CreatedAt: created}
			if _, err := store.Write(ctx, small, strings.NewReader("hello"), 5); err != nil {
				t.Fatalf("small Write: %v", err)
			}
			big := s3backend.FileInfo{DB: "app.db", Level: 9, MinTXID: 1, MaxTXID: 2, CreatedAt: created}
			data := bytes.Repeat([]byte("0123456789abcdef"), (17<<20)/16)
			if _, err := store.Write(ctx, big, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatalf("multipart Write: %v", err)
			}
			infos, err := store.List(ctx, "app.db", 0)
			if err != nil || len(infos) != 1 || infos[0].Size != 5 {
				t.Fatalf("List: %v, %v", infos, err)
			}
			rc, err := store.Open(ctx, small, 1)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if string(got) != "ello" {
				t.Fatalf("ranged Open: got %q", got)
			}
			if st, err := store.(s3backend.Stater).Stat(ctx, small); err != nil || !st.CreatedAt.Equal(created) {
				t.Fatalf("Stat: %v, %v; want CreatedAt %v", st, err, created)
			}
			if err := store.Delete(ctx, []s3backend.FileInfo{small, big}); err != nil {
				t.Fatalf("Delete: %v", err)
			}

			ops := map[string]int{}
			for _, r := range fake.recorded() {
				ops[r.Op]++
				checkRequest(t, r, tt.virtualHost, tt.region, tt.header)
				if r.Op != "PutObject" && r.Op != "UploadPart" {
					continue
				}
				sha := r.Header.Get("X-Amz-Content-Sha256")
				chunked := strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") ||
					r.Header.Get("X-Amz-Trailer") != "" || strings.HasPrefix(sha, "STREAMING-")
				if chunked != tt.trailer {
					t.Errorf("%s: aws-chunked/trailer = %t, want %t (sha=%q enc=%q trailer=%q)",
						r.Op, chunked, tt.trailer, sha, r.Header.Get("Content-Encoding"), r.Header.Get("X-Amz-Trailer"))
				}
				switch {
				case tt.trailer:
					if sha != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
						t.Errorf("%s: X-Amz-Content-Sha256 = %q, want the trailer form", r.Op, sha)
					}
				case tt.unsigned:
					if sha != "UNSIGNED-PAYLOAD" {
						t.Errorf("%s: X-Amz-Content-Sha256 = %q, want UNSIGNED-PAYLOAD", r.Op, sha)
					}
				default:
					if !hexSHA256.MatchString(sha) {
						t.Errorf("%s: X-Amz-Content-Sha256 = %q, want a signed payload hash", r.Op, sha)
					}
				}
			}
			for _, r := range fake.recorded() {
				switch r.Op {
				case "PutObject", "CreateMultipartUpload":
					if !strings.HasPrefix(strings.TrimPrefix(r.Path, "/bkt"), "/replica/app.db/") {
						t.Errorf("%s path %q: want key under replica/app.db/", r.Op, r.Path)
					}
					if ts := r.Header.Get("X-Amz-Meta-Litestream-Timestamp"); ts != created.Format(time.RFC3339Nano) {
						t.Errorf("%s: litestream-timestamp = %q, want %q", r.Op, ts, created.Format(time.RFC3339Nano))
					}
				case "DeleteObjects":
					if !tt.trailer && r.Header.Get("Content-Md5") == "" {
						t.Errorf("DeleteObjects without Content-MD5")
					}
				}
			}
			if ops["PutObject"] != 1 || ops["UploadPart"] != 4 || ops["CreateMultipartUpload"] != 1 || ops["CompleteMultipartUpload"] != 1 {
				t.Errorf("operations: %v; want 1 PutObject, 4 UploadPart, 1 multipart", ops)
			}
			t.Logf("max parts in flight: %d", fake.maxParts.Load())
			if tt.maxParts > 0 && fake.maxParts.Load() > tt.maxParts {
				t.Errorf("%d parts in flight at once, want at most %d", fake.maxParts.Load(), tt.maxParts)
			}
		})
	}
}

var credScope = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request`)

func checkRequest(t *testing.T, r wireRequest, virtualHost bool, region string, header [2]string) {
	t.Helper()
	if r.VirtualHst != virtualHost {
		t.Errorf("%s %s%s: virtual-hosted = %t, want %t", r.Op, r.Host, r.Path, r.VirtualHst, virtualHost)
	}
	if m := credScope.FindStringSubmatch(r.Header.Get("Authorization")); m == nil || m[1] != region {
		t.Errorf("%s: credential scope region %v, want %q", r.Op, m, region)
	}
	if header[0] != "" && r.Header.Get(header[0]) != header[1] {
		t.Errorf("%s: header %s = %q, want %q", r.Op, header[0], r.Header.Get(header[0]), header[1])
	}
	if header[0] != "" && !strings.Contains(r.Header.Get("Authorization"), strings.ToLower(header[0])) {
		t.Errorf("%s: header %s is not signed", r.Op, header[0])
	}
}

// TestWireMultipartAbortOnShortReader checks that a failed multipart upload
// is aborted, so no half object or orphaned parts remain.
func TestWireMultipartAbortOnShortReader(t *testing.T) {
	fake := newFakeS3(t, "bkt")
	store, err := s3backend.New(t.Context(), s3backend.Config{
		URL: "s3://bkt/r?endpoint=" + fake.srv.URL, AccessKeyID: "a", SecretAccessKey: "b", CAFile: fake.caFile,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi := s3backend.FileInfo{DB: "d", Level: 0, MinTXID: 1, MaxTXID: 1}
	data := make([]byte, 11<<20)
	_, err = store.Write(t.Context(), fi, bytes.NewReader(data), int64(len(data))+1)
	if !errors.Is(err, s3backend.ErrSizeMismatch) {
		t.Fatalf("Write: got %v, want ErrSizeMismatch", err)
	}
	ops := map[string]int{}
	for _, r := range fake.recorded() {
		ops[r.Op]++
	}
	if ops["AbortMultipartUpload"] != 1 || ops["CompleteMultipartUpload"] != 0 {
		t.Fatalf("operations: %v; want one abort and no complete", ops)
	}
}

// TestWireNotFoundAndBucketErrors checks error mapping on the wire.
func TestWireNotFoundAndBucketErrors(t *testing.T) {
	fake := newFakeS3(t, "bkt")
	newStore := func(bucket string) s3backend.Store {
		s, err := s3backend.New(t.Context(), s3backend.Config{
			URL: "s3://" + bucket + "/r?endpoint=" + fake.srv.URL, AccessKeyID: "a", SecretAccessKey: "b", CAFile: fake.caFile,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newStore("bkt")
	fi := s3backend.FileInfo{DB: "d", Level: 0, MinTXID: 1, MaxTXID: 1}
	if _, err := s.Open(t.Context(), fi, 0); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Open missing: got %v, want ErrNotFound", err)
	}
	if _, err := s.(s3backend.Stater).Stat(t.Context(), fi); !errors.Is(err, s3backend.ErrNotFound) {
		t.Fatalf("Stat missing: got %v, want ErrNotFound", err)
	}
	err := newStore("nobucket").Init(t.Context())
	if !errors.Is(err, s3backend.ErrBucketNotFound) || s3backend.Hint(err) == "" {
		t.Fatalf("Init on missing bucket: got %v (hint %q), want ErrBucketNotFound with hint", err, s3backend.Hint(err))
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}
