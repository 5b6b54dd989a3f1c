package s3backend_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walfs/walfs/s3backend"
)

// withDate answers like a with the server clock set off by skew.
func withDate(skew time.Duration, a answer) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		a(w, r)
	}
}

func withHeader(k, v string, a answer) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(k, v)
		a(w, r)
	}
}

func s3Msg(status int, code, msg string) answer {
	return func(w http.ResponseWriter, _ *http.Request) { s3Error(w, status, code, msg) }
}

// TestWireErrorHints: each failure users meet becomes one line with the
// sentinel callers branch on and a hint naming what to fix, with the values
// actually used (credential source, endpoint and scheme, regions, clock skew).
func TestWireErrorHints(t *testing.T) {
	tests := []struct {
		name   string
		answer answer
		kind   error
		hint   []string // substrings; a string starting with ~ is a regexp
	}{
		{"AccessDenied", s3Answer(403, "AccessDenied"), s3backend.ErrAccessDenied,
			[]string{"credentials from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY", `bucket "bkt"`}},
		{"InvalidAccessKeyId", s3Answer(403, "InvalidAccessKeyId"), s3backend.ErrAccessDenied,
			[]string{"does not know the access-key-id from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY"}},
		{"SignatureDoesNotMatch, clocks agree", withDate(0, s3Answer(403, "SignatureDoesNotMatch")), s3backend.ErrAccessDenied,
			[]string{"secret-access-key from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY", "agrees with the server's Date"}},
		{"SignatureDoesNotMatch, server 20m ahead", withDate(20*time.Minute, s3Answer(403, "SignatureDoesNotMatch")), s3backend.ErrAccessDenied,
			[]string{`~(19m5[89]s|20m0s) behind the server's Date`, "sync this machine's clock"}},
		{"RequestTimeTooSkewed, server 1h behind", withDate(-time.Hour, s3Answer(403, "RequestTimeTooSkewed")), s3backend.ErrClockSkew,
			[]string{`~(59m59s|1h0m[01]s) ahead of the server's Date`, "timedatectl"}},
		{"RequestTimeTooSkewed without Date", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Date"] = nil
			s3Error(w, 403, "RequestTimeTooSkewed", "skewed")
		}, s3backend.ErrClockSkew, []string{"no Date header"}},
		{"PermanentRedirect with x-amz-bucket-region", withHeader("X-Amz-Bucket-Region", "eu-west-1", s3Answer(301, "PermanentRedirect")), s3backend.ErrWrongRegion,
			[]string{`bucket "bkt" is in region eu-west-1, not us-east-1`, "&region=eu-west-1"}},
		{"bare 301 with x-amz-bucket-region", withHeader("X-Amz-Bucket-Region", "ap-south-1", s3Answer(301, "")), s3backend.ErrWrongRegion,
			[]string{"is in region ap-south-1"}},
		{"AuthorizationHeaderMalformed", s3Msg(400, "AuthorizationHeaderMalformed",
			"The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'us-west-004'"), s3backend.ErrWrongRegion,
			[]string{"is in region us-west-004, not us-east-1", "region: us-west-004"}},
		{"AuthorizationHeaderMalformed without a region", s3Answer(400, "AuthorizationHeaderMalformed"), s3backend.ErrWrongRegion,
			[]string{"not in region us-east-1", "set region"}},
		{"NoSuchBucket", s3Answer(404, "NoSuchBucket"), s3backend.ErrBucketNotFound,
			[]string{`bucket "bkt" does not exist at http://127.0.0.1:`, "create it first"}},
		{"bare 403 on HEAD", s3Answer(403, ""), s3backend.ErrAccessDenied,
			[]string{"credentials from WALFS_ACCESS_KEY_ID"}},
		{"503 until attempts run out", s3Answer(503, "SlowDown"), nil,
			[]string{"HTTP 503", "local disk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, tt.answer)
			st := newScriptedStore(t, srv.srv.URL, fastRetry)
			var err error
			if strings.Contains(tt.name, "HEAD") || strings.HasPrefix(tt.name, "bare") {
				_, err = st.Stat(t.Context(), s3backend.FileInfo{DB: "db", MinTXID: 1, MaxTXID: 1})
			} else {
				err = st.Init(t.Context())
			}
			checkHint(t, err, tt.kind, tt.hint...)
		})
	}
}

// checkHint asserts err is one line, matches kind (unless nil) and has a
// hint with every want (a leading ~ makes it a regexp).
func checkHint(t *testing.T, err error, kind error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error")
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %v does not match %v", err, kind)
	}
	t.Logf("%v", err)
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error is not one line: %q", err)
	}
	h := s3backend.Hint(err)
	for _, w := range want {
		ok := strings.Contains(h, w)
		if re, isRE := strings.CutPrefix(w, "~"); isRE {
			ok = regexp.MustCompile(re).MatchString(h)
		}
		if !ok {
			t.Errorf("hint %q lacks %q", h, w)
		}
	}
	if strings.Contains(err.Error(), "secret\"") || strings.Contains(err.Error(), "=secret") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

// TestWireCredentialSourceInHints: New names where the credentials came
// from, for each source.
func TestWireCredentialSourceInHints(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	for _, env := range []string{"WALFS_ACCESS_KEY_ID", "WALFS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
		t.Setenv(env, "")
	}
	srv := newScripted(t, s3Answer(403, "InvalidAccessKeyId"))
	initErr := func(cfg s3backend.Config) error {
		cfg.URL = "s3://bkt/p?endpoint=" + srv.srv.URL
		st, err := s3backend.New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.Init(t.Context())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDAWS")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "awssecret")
	checkHint(t, initErr(s3backend.Config{}), s3backend.ErrAccessDenied, "from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	t.Setenv("WALFS_ACCESS_KEY_ID", "AKIDWALFS")
	t.Setenv("WALFS_SECRET_ACCESS_KEY", "walfssecret")
	checkHint(t, initErr(s3backend.Config{}), s3backend.ErrAccessDenied, "from WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY")
	checkHint(t, initErr(s3backend.Config{AccessKeyID: "AKIDCFG", SecretAccessKey: "cfgsecret"}), s3backend.ErrAccessDenied,
		"from access-key-id/secret-access-key in the replica config")
}

// TestWireConnectionHints: failures below HTTP name the URL actually dialed,
// scheme included.
func TestWireConnectionHints(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	plain := newScripted(t, okPut)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	resetting := newScripted(t, reset)
	stalling := newScripted(t, stall)
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	plainAddr := strings.TrimPrefix(plain.srv.URL, "http://")

	tests := []struct {
		name     string
		endpoint string
		dial     func(ctx context.Context, network, addr string) (net.Conn, error)
		hint     []string
	}{
		{"connection refused", "http://" + closed, nil,
			[]string{"nothing accepts connections at http://" + closed}},
		{"host does not resolve", "https://s3.nowhere.invalid", dnsFail,
			[]string{"DNS has no address for s3.nowhere.invalid (dialing https://s3.nowhere.invalid)"}},
		{"virtual-hosted bucket does not resolve", "https://nyc3.digitaloceanspaces.com", dnsFail,
			[]string{"bkt.nyc3.digitaloceanspaces.com", "force-path-style=true"}},
		{"untrusted certificate", tlsSrv.URL, nil,
			[]string{"certificate of " + tlsSrv.URL + " is not trusted", "ca-file"}},
		{"certificate for another host", "https://s3.example.test", dialTo(tlsAddr),
			[]string{"not valid for s3.example.test", "example.com"}},
		{"https to a plain-HTTP server", "https://" + plainAddr, nil,
			[]string{"https://" + plainAddr + " does not speak TLS", "http://"}},
		{"http to an HTTPS server", "http://" + tlsAddr, nil,
			[]string{"http://" + tlsAddr, "https://"}},
		{"connection reset on every attempt", resetting.srv.URL, nil,
			[]string{resetting.srv.URL + " reset the connection"}},
		{"no response in time", stalling.srv.URL, nil,
			[]string{stalling.srv.URL + " did not answer in time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dial != nil {
				t.Cleanup(s3backend.SetDialOverride(tt.dial))
			}
			err := newScriptedStore(t, tt.endpoint, fastRetry).Init(t.Context())
			kind := s3backend.ErrUnreachable
			if strings.HasPrefix(tt.name, "http to") {
				kind = nil // an HTTP 400, not a transport failure
			}
			checkHint(t, err, kind, tt.hint...)
		})
	}
}

// dnsFail fails every dial as an unknown host would, without a resolver.
func dnsFail(_ context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
}

func dialTo(target string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
}

// TestWireNoCredentials: when nothing supplies credentials the error says
// so, rather than blaming the store for the AWS chain's failures.
func TestWireNoCredentials(t *testing.T) {
	clearCredentialEnv(t)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := newScripted(t, okPut)
	st, err := s3backend.New(t.Context(), s3backend.Config{URL: "s3://bkt/p?endpoint=" + srv.srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkHint(t, st.Init(t.Context()), s3backend.ErrNoCredentials, "the AWS default chain found none", "WALFS_ACCESS_KEY_ID")
	if n := srv.requests(); n != 0 {
		t.Errorf("%d requests reached the store without credentials", n)
	}
}
