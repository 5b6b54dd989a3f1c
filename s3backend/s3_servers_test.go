package s3backend_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/storetest"
)

// Conformance against real servers started from the pinned binaries. Each
// subtest gets its own key prefix in the server's bucket.

func TestS3ConformanceMinIO(t *testing.T) {
	runServerConformance(t, testserver.StartMinIO(t))
}

func TestS3ConformanceVersityGW(t *testing.T) {
	runServerConformance(t, testserver.StartVersityGW(t))
}

func TestS3ConformanceMinIOTLS(t *testing.T) {
	runServerConformance(t, testserver.StartMinIO(t, testserver.WithTLS()))
}

func TestS3ConformanceVersityGWTLS(t *testing.T) {
	runServerConformance(t, testserver.StartVersityGW(t, testserver.WithTLS()))
}

func runServerConformance(t *testing.T, srv *testserver.Server) {
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) s3backend.Store {
		return newServerStore(t, srv, fmt.Sprintf("conformance/%d", n.Add(1)))
	})
}

// serverConfig is how a user would point walfs at srv.
func serverConfig(srv *testserver.Server, path string) s3backend.Config {
	return s3backend.Config{
		URL:             "s3://" + srv.Bucket + "/" + path + "?endpoint=" + srv.Endpoint,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		CAFile:          srv.CAFile,
	}
}

func newServerStore(t *testing.T, srv *testserver.Server, path string) s3backend.Store {
	t.Helper()
	s, err := s3backend.New(t.Context(), serverConfig(srv, path), testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestS3ServerErrors checks the hints users see for the common mistakes,
// against real servers' real error responses.
func TestS3ServerErrors(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...testserver.Option) *testserver.Server{
		"minio": testserver.StartMinIO, "versitygw": testserver.StartVersityGW,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			cfg := serverConfig(srv, "p")
			cfg.SecretAccessKey = "wrong-secret"
			s, err := s3backend.New(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Init(t.Context())
			if !errors.Is(err, s3backend.ErrAccessDenied) || !strings.Contains(s3backend.Hint(err), "secret-access-key") {
				t.Errorf("wrong secret: got %v (hint %q), want ErrAccessDenied with a credentials hint", err, s3backend.Hint(err))
			}
			if strings.Contains(err.Error(), "wrong-secret") {
				t.Errorf("error leaks the secret: %v", err)
			}

			cfg = serverConfig(srv, "p")
			cfg.URL = strings.Replace(cfg.URL, srv.Bucket, "no-such-bucket", 1)
			s, err = s3backend.New(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Init(t.Context())
			if !errors.Is(err, s3backend.ErrBucketNotFound) || !strings.Contains(s3backend.Hint(err), "bucket") {
				t.Errorf("missing bucket: got %v (hint %q), want ErrBucketNotFound with a bucket hint", err, s3backend.Hint(err))
			}
		})
	}
}

// The TLS servers once more, trusting them with skip-verify instead of
// ca-file (and with AWS_CA_BUNDLE unset, so nothing else trusts them).
func TestS3ConformanceMinIOTLSSkipVerify(t *testing.T) {
	runSkipVerifyConformance(t, testserver.StartMinIO(t, testserver.WithTLS()))
}

func TestS3ConformanceVersityGWTLSSkipVerify(t *testing.T) {
	runSkipVerifyConformance(t, testserver.StartVersityGW(t, testserver.WithTLS()))
}

func runSkipVerifyConformance(t *testing.T, srv *testserver.Server) {
	t.Setenv("AWS_CA_BUNDLE", "")
	// Without either setting the self-signed certificate must be refused,
	// or the run below would prove nothing.
	cfg := serverConfig(srv, "untrusted")
	cfg.CAFile = ""
	s, err := s3backend.New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init(t.Context()); !errors.Is(err, s3backend.ErrUnreachable) || !strings.Contains(s3backend.Hint(err), "ca-file") {
		t.Fatalf("no ca-file, no skip-verify: got %v, want ErrUnreachable with a ca-file hint", err)
	}
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) s3backend.Store {
		cfg := serverConfig(srv, fmt.Sprintf("skip-verify/%d", n.Add(1)))
		cfg.CAFile = ""
		cfg.URL += "&skip-verify=true"
		s, err := s3backend.New(t.Context(), cfg, testLogger(t))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}
