package testserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one running S3 server process.
type Server struct {
	Name      string // "minio" or "versitygw"
	Endpoint  string // http://127.0.0.1:PORT or https://127.0.0.1:PORT
	Region    string // the region the server signs with
	AccessKey string
	SecretKey string
	Bucket    string // created and empty when Start returns
	CAFile    string // PEM of the self-signed certificate (TLS servers only)
	Dir       string // data directory
	LogFile   string // the server's stdout and stderr

	client *http.Client
	// How the process was started, for Restart.
	bin       string
	args, env []string
	readyPath string
	readyWant int

	mu     sync.Mutex // guards cmd and exited across Stop and Restart
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Option changes how a server is started.
type Option func(*options)

type options struct {
	tls bool
}

// WithTLS serves HTTPS with a fresh self-signed certificate for 127.0.0.1;
// Server.CAFile names it.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// readyTimeout bounds how long a server may take to answer its health check.
const readyTimeout = 30 * time.Second

// StartMinIO starts MinIO on a free loopback port with a temp data dir and
// one bucket, and stops it when the test ends.
func StartMinIO(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := Tool(t, "minio")
	o := apply(opts)
	s := newServer(t, "minio")
	port, consolePort := freePort(t), freePort(t)
	args := []string{"server", s.Dir, "--quiet",
		"--address", "127.0.0.1:" + strconv.Itoa(port),
		"--console-address", "127.0.0.1:" + strconv.Itoa(consolePort)}
	if o.tls {
		certsDir := filepath.Join(t.TempDir(), "certs")
		s.CAFile = writeCert(t, certsDir, "public.crt", "private.key")
		args = append(args, "--certs-dir", certsDir)
	}
	s.setEndpoint(o.tls, port)
	env := []string{
		"MINIO_ROOT_USER=" + s.AccessKey,
		"MINIO_ROOT_PASSWORD=" + s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	}
	// live answers as soon as the HTTP server runs; ready once it serves S3.
	s.start(t, bin, args, env, "/minio/health/ready", http.StatusOK)
	s.createBucket(t, s.Bucket)
	return s
}

// StartVersityGW starts versitygw's posix backend on a free loopback port
// with a temp data dir and one bucket, and stops it when the test ends. Where
// the filesystem lacks user xattrs, metadata goes to a sidecar directory.
func StartVersityGW(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := Tool(t, "versitygw")
	o := apply(opts)
	s := newServer(t, "versitygw")
	port := freePort(t)
	args := []string{"--port", "127.0.0.1:" + strconv.Itoa(port), "--health", "/health", "--quiet"}
	if o.tls {
		dir := t.TempDir()
		s.CAFile = writeCert(t, dir, "cert.pem", "key.pem")
		args = append(args, "--cert", filepath.Join(dir, "cert.pem"), "--key", filepath.Join(dir, "key.pem"))
	}
	args = append(args, "posix")
	if !supportsUserXattr(s.Dir) {
		args = append(args, "--sidecar", t.TempDir())
	}
	args = append(args, s.Dir)
	s.setEndpoint(o.tls, port)
	env := []string{"ROOT_ACCESS_KEY_ID=" + s.AccessKey, "ROOT_SECRET_ACCESS_KEY=" + s.SecretKey}
	s.start(t, bin, args, env, "/health", http.StatusOK)
	s.createBucket(t, s.Bucket)
	return s
}

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

func newServer(t testing.TB, name string) *Server {
	return &Server{
		Name:      name,
		Region:    "us-east-1",
		AccessKey: "walfs" + randHex(6),
		SecretKey: randHex(20),
		Bucket:    "walfs-test-" + randHex(4),
		Dir:       t.TempDir(),
	}
}

func (s *Server) setEndpoint(useTLS bool, port int) {
	scheme := "http"
	s.client = &http.Client{Timeout: 5 * time.Second}
	if useTLS {
		scheme = "https"
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(s.CAFile); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	s.Endpoint = fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
}

// start runs the binary and polls path until it answers want.
func (s *Server) start(t testing.TB, bin string, args, env []string, path string, want int) {
	t.Helper()
	s.bin, s.args, s.env, s.readyPath, s.readyWant = bin, args, env, path, want
	if s.LogFile == "" {
		s.LogFile = filepath.Join(t.TempDir(), s.Name+".log")
	}
	// Appended to, so a restarted server's log follows the first one's.
	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.Dir
	setProcAttrs(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", s.Name, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(s.Stop)

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited during startup (%s)\n%s", s.Name, cmd.ProcessState, s.logTail())
		default:
		}
		resp, err := s.client.Get(s.Endpoint + path)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after %v (last: %v)\n%s", s.Name, s.Endpoint+path, readyTimeout, err, s.logTail())
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server: SIGTERM to its PID, SIGKILL if it lingers.
// Idempotent; registered with t.Cleanup by Start and Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Restart stops the server if it runs and starts it again with the same
// binary, port, credentials and data directory (so its buckets and objects
// are still there), waiting until it is ready: the end of an outage.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t, s.bin, s.args, s.env, s.readyPath, s.readyWant)
	// MinIO can pass its readiness check on a restart over existing data
	// before its object layer answers (503 XMinioServerNotInitialized):
	// wait until a bucket request gets a real answer.
	deadline := time.Now().Add(readyTimeout)
	for {
		status, _, err := s.putBucket(s.Bucket)
		if err == nil && status != http.StatusServiceUnavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s restarted but still answers 503 after %s\n%s", s.Name, readyTimeout, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID returns the server's process id.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// CreateBucket creates another bucket on the server.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	s.createBucket(t, name)
}

// createBucket sends a signed PUT Bucket, retrying while the server says it
// is still initializing (503).
func (s *Server) createBucket(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		status, body, err := s.putBucket(name)
		switch {
		case err != nil:
			t.Fatalf("create bucket %s on %s: %v\n%s", name, s.Name, err, s.logTail())
		case status == http.StatusOK:
			return
		case status == http.StatusServiceUnavailable && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond) // poll interval
		default:
			t.Fatalf("create bucket %s on %s: HTTP %d\n%s", name, s.Name, status, body)
		}
	}
}

func (s *Server) putBucket(name string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.Endpoint+"/"+name, http.NoBody)
	if err != nil {
		return 0, nil, err
	}
	signV4(req, s.AccessKey, s.SecretKey, s.Region, time.Now())
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, nil
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the server binds; startup would then fail loudly, not hang.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// supportsUserXattr reports whether dir's filesystem stores user.* xattrs,
// which versitygw's posix backend uses for object metadata.
func supportsUserXattr(dir string) bool {
	f := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		return false
	}
	defer os.Remove(f)
	err := setxattr(f, "user.walfs.probe", []byte("1"))
	return err == nil || !errors.Is(err, errXattrUnsupported)
}
