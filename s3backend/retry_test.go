package s3backend_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/walfs/walfs/providers"
	"github.com/walfs/walfs/s3backend"
)

// fastRetry is DefaultRetryPolicy's shape with delays tests need not wait for.
var fastRetry = s3backend.RetryPolicy{
	MaxAttempts:       4,
	BaseDelay:         time.Millisecond,
	ThrottleBaseDelay: 2 * time.Millisecond,
	MaxBackoff:        5 * time.Millisecond,
	ResponseTimeout:   200 * time.Millisecond,
}

// answer is one scripted server response.
type answer func(w http.ResponseWriter, r *http.Request)

func s3Answer(status int, code string) answer {
	return func(w http.ResponseWriter, _ *http.Request) {
		if code == "" {
			w.WriteHeader(status)
			return
		}
		s3Error(w, status, code, code+" from the test server")
	}
}

var (
	okPut answer = func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("ETag", `"e"`) }
	// reset closes the connection with a TCP RST once the request is read.
	reset answer = func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	// stall sends nothing until the client gives up on the request (the
	// server notices the closed connection only once the body is read).
	stall answer = func(_ http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}
)

// scripted serves the answers in order, repeating the last one, and counts
// requests.
type scripted struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers []answer
	n       int
}

func newScripted(t *testing.T, answers ...answer) *scripted {
	s := &scripted{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		a := s.answers[min(s.n, len(s.answers)-1)]
		s.n++
		s.mu.Unlock()
		a(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// newScriptedStore is an S3 store on endpoint with the given retry policy.
func newScriptedStore(t *testing.T, endpoint string, retry s3backend.RetryPolicy) *s3backend.S3Store {
	t.Helper()
	st, err := s3backend.NewS3Store(t.Context(), s3backend.S3Options{
		Bucket: "bkt", Path: "p", Endpoint: endpoint, Region: "us-east-1",
		Profile:          providers.Detect(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		CredentialSource: "WALFS_ACCESS_KEY_ID/WALFS_SECRET_ACCESS_KEY",
		Retry:            retry,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func writeSmall(t *testing.T, st s3backend.Store) error {
	t.Helper()
	_, err := st.Write(t.Context(), s3backend.FileInfo{DB: "db", MinTXID: 1, MaxTXID: 1}, strings.NewReader("hello"), 5)
	return err
}

// TestRetryTransientErrors: each transient failure is retried with the same
// body until the store accepts it; permanent errors are not retried.
func TestRetryTransientErrors(t *testing.T) {
	slowDown := s3Answer(http.StatusServiceUnavailable, "SlowDown")
	tests := []struct {
		name     string
		answers  []answer
		requests int
		ok       bool
	}{
		{"503 SlowDown twice then success", []answer{slowDown, slowDown, okPut}, 3, true},
		{"500 InternalError then success", []answer{s3Answer(500, "InternalError"), okPut}, 2, true},
		{"502 bare then success", []answer{s3Answer(502, ""), okPut}, 2, true},
		{"429 bare then success", []answer{s3Answer(http.StatusTooManyRequests, ""), okPut}, 2, true},
		{"429 TooManyRequests then success", []answer{s3Answer(http.StatusTooManyRequests, "TooManyRequests"), okPut}, 2, true},
		{"connection reset twice then success", []answer{reset, reset, okPut}, 3, true},
		{"stalled response then success", []answer{stall, okPut}, 2, true},
		{"503 SlowDown until attempts run out", []answer{slowDown}, fastRetry.MaxAttempts, false},
		{"403 AccessDenied is not retried", []answer{s3Answer(403, "AccessDenied")}, 1, false},
		{"404 NoSuchBucket is not retried", []answer{s3Answer(404, "NoSuchBucket")}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, tt.answers...)
			err := writeSmall(t, newScriptedStore(t, srv.srv.URL, fastRetry))
			if (err == nil) != tt.ok {
				t.Fatalf("Write: err = %v, want success %t", err, tt.ok)
			}
			if got := srv.requests(); got != tt.requests {
				t.Errorf("server saw %d requests, want %d", got, tt.requests)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// TestRetryPolicyIgnoresSDKEnv: AWS_MAX_ATTEMPTS and AWS_RETRY_MODE must not
// change walfs's policy.
func TestRetryPolicyIgnoresSDKEnv(t *testing.T) {
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("AWS_RETRY_MODE", "adaptive")
	slowDown := s3Answer(http.StatusServiceUnavailable, "SlowDown")
	srv := newScripted(t, slowDown, slowDown, okPut)
	if err := writeSmall(t, newScriptedStore(t, srv.srv.URL, fastRetry)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := srv.requests(); got != 3 {
		t.Errorf("server saw %d requests, want 3", got)
	}
}

// TestRetryExhaustedHint: the final error says how often it was tried and
// that nothing is lost.
func TestRetryExhaustedHint(t *testing.T) {
	srv := newScripted(t, s3Answer(http.StatusServiceUnavailable, "SlowDown"))
	err := writeSmall(t, newScriptedStore(t, srv.srv.URL, fastRetry))
	if err == nil {
		t.Fatal("Write succeeded against a store that always answers 503")
	}
	for _, want := range []string{"exceeded maximum number of attempts, 4", "SlowDown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if h := s3backend.Hint(err); !strings.Contains(h, "HTTP 503") || !strings.Contains(h, "local disk") {
		t.Errorf("hint %q should name the status and say the data waits on local disk", h)
	}
}

type statusErr int

func (e statusErr) Error() string       { return fmt.Sprintf("HTTP %d", int(e)) }
func (e statusErr) HTTPStatusCode() int { return int(e) }

// TestRetryDelay: equal jitter, doubling per attempt, capped, with a longer
// base after throttling.
func TestRetryDelay(t *testing.T) {
	p := s3backend.RetryPolicy{MaxAttempts: 9, BaseDelay: 100 * time.Millisecond, ThrottleBaseDelay: time.Second, MaxBackoff: 4 * time.Second}
	tests := []struct {
		attempt int
		err     error
		nominal time.Duration
	}{
		{1, errors.New("connection reset"), 100 * time.Millisecond},
		{2, statusErr(500), 200 * time.Millisecond},
		{4, statusErr(502), 800 * time.Millisecond},
		{9, statusErr(500), 4 * time.Second},
		{1, statusErr(503), time.Second},
		{2, statusErr(429), 2 * time.Second},
		{5, statusErr(503), 4 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Delay(tt.attempt, tt.err)
			if d < tt.nominal/2 || d > tt.nominal {
				t.Fatalf("Delay(%d, %v) = %v, want within [%v, %v]", tt.attempt, tt.err, d, tt.nominal/2, tt.nominal)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d, %v) is not jittered: always %v", tt.attempt, tt.err, seen)
		}
	}
}

func TestDefaultRetryPolicy(t *testing.T) {
	p := s3backend.DefaultRetryPolicy
	if p.MaxAttempts < 3 || p.BaseDelay <= 0 || p.ThrottleBaseDelay < p.BaseDelay || p.MaxBackoff < p.ThrottleBaseDelay || p.ResponseTimeout <= 0 {
		t.Fatalf("DefaultRetryPolicy = %+v: want several attempts, positive delays, throttle base ≥ base, a cap and a response timeout", p)
	}
}
