package testserver

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

func TestServersStartServeAndStop(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...Option) *Server{
		"minio": StartMinIO, "versitygw": StartVersityGW,
	} {
		for _, tls := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tls=%t", name, tls), func(t *testing.T) {
				var opts []Option
				if tls {
					opts = append(opts, WithTLS())
				}
				s := start(t, opts...)
				if s.Bucket == "" || s.AccessKey == "" || s.SecretKey == "" || s.Endpoint == "" {
					t.Fatalf("incomplete server: %+v", s)
				}
				if tls != (s.CAFile != "") {
					t.Fatalf("CAFile = %q with tls=%t", s.CAFile, tls)
				}
				// A second bucket proves the signer works after startup too.
				s.CreateBucket(t, "second-bucket")
				pid := s.PID()
				s.Stop()
				s.Stop() // idempotent
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Fatalf("process %d still exists after Stop (kill 0: %v)", pid, err)
				}
				if _, err := http.Get(s.Endpoint); err == nil {
					t.Fatal("server still answers after Stop")
				}
			})
		}
	}
}

// fakeTB records how ToolsBin ends a test.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	skipped bool
	failed  bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(string, ...any) {
	f.mu.Lock()
	f.skipped = true
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	runtime.Goexit()
}

func runWithFake(fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestMissingToolsSkipOrFail(t *testing.T) {
	t.Setenv(EnvToolsDir, t.TempDir()) // an empty cache: no bin dir
	t.Setenv(EnvDisallowSkip, "")
	if f := runWithFake(func(tb testing.TB) { ToolsBin(tb) }); !f.skipped || f.failed {
		t.Fatalf("missing tools dir: skipped=%t failed=%t, want skip", f.skipped, f.failed)
	}
	t.Setenv(EnvDisallowSkip, "1")
	if f := runWithFake(func(tb testing.TB) { ToolsBin(tb) }); f.skipped || !f.failed {
		t.Fatalf("missing tools dir with %s=1: skipped=%t failed=%t, want fail", EnvDisallowSkip, f.skipped, f.failed)
	}
	t.Setenv(EnvDisallowSkip, "")
	if f := runWithFake(func(tb testing.TB) { Tool(tb, "minio") }); !f.skipped {
		t.Fatal("missing minio: want skip")
	}
}

func TestToolsDirRule(t *testing.T) {
	t.Setenv(EnvToolsDir, "/x/cache")
	if got := ToolsDir(); got != "/x/cache/bin" {
		t.Fatalf("ToolsDir with %s: got %q", EnvToolsDir, got)
	}
	t.Setenv(EnvToolsDir, "")
	t.Setenv("XDG_CACHE_HOME", "/y")
	if got := ToolsDir(); got != "/y/walfs-tools/bin" {
		t.Fatalf("ToolsDir with XDG_CACHE_HOME: got %q", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := ToolsDir(); got != "/home/u/.cache/walfs-tools/bin" {
		t.Fatalf("ToolsDir default: got %q", got)
	}
}
