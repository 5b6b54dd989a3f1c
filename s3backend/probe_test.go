package s3backend_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/providers"
	"github.com/walfs/walfs/s3backend"
)

func probe(t *testing.T, st s3backend.Store) (s3backend.ProbeResult, error) {
	t.Helper()
	p, ok := st.(s3backend.Prober)
	if !ok {
		t.Fatalf("%T does not implement Prober", st)
	}
	return p.Probe(t.Context())
}

func stepNames(res s3backend.ProbeResult) string {
	var names []string
	for _, s := range res.Steps {
		n := s.Name
		if !s.OK {
			n += "(failed)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// TestProbeConditionalWrites: the three behaviours stores show for
// If-None-Match: * on PUT, and that the probe leaves no object behind.
func TestProbeConditionalWrites(t *testing.T) {
	for _, tt := range []struct {
		mode   string
		want   providers.Support
		detail string
	}{
		{"honour", providers.SupportYes, "supported: a second If-None-Match: * put of the same key was refused"},
		{"", providers.SupportNo, "not supported: the store ignores If-None-Match: a second create of the same key succeeded"},
		{"501", providers.SupportNo, "not supported: the store answers conditional puts with 501 NotImplemented"},
	} {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			fake := newFakeS3(t, "bkt")
			fake.conditional = tt.mode
			st, err := s3backend.New(t.Context(), s3backend.Config{
				URL: "s3://bkt/replica?endpoint=" + fake.srv.URL, AccessKeyID: "a", SecretAccessKey: "b", CAFile: fake.caFile,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := probe(t, st)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got := stepNames(res); got != "list,write,read,delete" {
				t.Errorf("steps = %s, want list,write,read,delete", got)
			}
			cw := res.ConditionalWrites
			if cw == nil || cw.Supported != tt.want || !strings.Contains(cw.Detail, tt.detail) {
				t.Errorf("conditional writes = %+v, want %s with %q", cw, tt.want, tt.detail)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			for k := range fake.objects {
				t.Errorf("probe left %q behind", k)
			}
			for _, r := range fake.requests {
				if (r.Op == "PutObject" || r.Op == "GetObject") && !strings.HasPrefix(r.Path, "/bkt/replica/.walfs-probe-") {
					t.Errorf("%s %s is outside the replica path", r.Op, r.Path)
				}
			}
		})
	}
}

// TestProbeFailureIsOneLineWithHint: a probe that cannot write stops there
// with the store's hint.
func TestProbeFailureIsOneLineWithHint(t *testing.T) {
	fake := newFakeS3(t, "bkt")
	st, err := s3backend.New(t.Context(), s3backend.Config{
		URL: "s3://other-bucket/p?endpoint=" + fake.srv.URL, AccessKeyID: "a", SecretAccessKey: "b", CAFile: fake.caFile,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := probe(t, st)
	checkHint(t, err, s3backend.ErrBucketNotFound, `bucket "other-bucket" does not exist`)
	if got := stepNames(res); got != "list(failed)" {
		t.Errorf("steps = %s, want list(failed)", got)
	}
}

func TestProbeFileStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "replica")
	res, err := probe(t, s3backend.NewFileStore(root))
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if got := stepNames(res); got != "init,write,read,delete" || res.ConditionalWrites == nil || res.ConditionalWrites.Supported != providers.SupportYes {
		t.Errorf("probe = %s %+v, want init,write,read,delete and conditional writes supported", got, res.ConditionalWrites)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("probe left %v behind", ents)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		_, err := probe(t, s3backend.NewFileStore(ro))
		if err == nil || s3backend.Hint(err) == "" {
			t.Errorf("probe of a read-only dir: got %v, want an error with a hint", err)
		}
	}
}

// TestProbeServers: real MinIO and versitygw honour If-None-Match: *.
func TestProbeServers(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...testserver.Option) *testserver.Server{
		"minio": testserver.StartMinIO, "versitygw": testserver.StartVersityGW,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			res, err := probe(t, newServerStore(t, srv, "probe/path"))
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got := stepNames(res); got != "list,write,read,delete" {
				t.Errorf("steps = %s", got)
			}
			if cw := res.ConditionalWrites; cw == nil || cw.Supported != providers.SupportYes {
				t.Errorf("conditional writes = %+v, want yes", cw)
			}
			out, err := newServerStore(t, srv, "").(*s3backend.S3Store).Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &srv.Bucket})
			if err != nil || len(out.Contents) != 0 {
				t.Errorf("after the probe the bucket holds %d objects (%v); want none", len(out.Contents), err)
			}
		})
	}
}
