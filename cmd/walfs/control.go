package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/walfs/walfs/fusefs"
)

// The control socket lets `walfs unmount`, `sync` and `status` talk to a
// running mount. It lives in the state dir (0700), is itself 0600, and every
// connection's peer credentials are checked: only the mount's own user and
// root may use it, whatever the modes say.
const controlSocketName = "control.sock"

type unmountRequest struct {
	Timeout time.Duration `json:"timeout"`
	Lazy    bool          `json:"lazy"`
}

type unmountResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// controlServer serves the socket until closed.
type controlServer struct {
	ln  net.Listener
	srv *http.Server
}

func startControl(stateDir string, log *slog.Logger, unmount func(ctx context.Context, req unmountRequest) error, flush func(ctx context.Context, timeout time.Duration) error, routes ...controlRoute) (*controlServer, error) {
	mux := http.NewServeMux()
	answer := func(err error) unmountResponse {
		if err != nil {
			return unmountResponse{Error: oneLine(err)}
		}
		return unmountResponse{OK: true}
	}
	routes = append(routes,
		jsonRoute("POST /unmount", func(ctx context.Context, req unmountRequest) unmountResponse { return answer(unmount(ctx, req)) }),
		jsonRoute("POST /flush", func(ctx context.Context, req unmountRequest) unmountResponse { return answer(flush(ctx, req.Timeout)) }))
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
	return listenControl(filepath.Join(stateDir, controlSocketName), uint32(os.Geteuid()), mux, log)
}

// listenControl serves h on a new unix socket at path, mode 0600, to peers
// running as owner or root; others get 403 and a one-line reason.
func listenControl(path string, owner uint32, h http.Handler, log *slog.Logger) (*controlServer, error) {
	os.Remove(path) // left by a killed mount; we hold the data dir now
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	// bind(2) applies the umask, which is 0 in a mount; the 0700 state dir
	// covers the moment until this chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("make control socket %s private: %w", path, err)
	}
	srv := &http.Server{
		Handler:           requirePeer(owner, h, log),
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cred, err := peerCred(c)
			return context.WithValue(ctx, peerKey{}, peer{cred: cred, err: err})
		},
	}
	cs := &controlServer{ln: ln, srv: srv}
	go func() {
		if err := cs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket stopped", "err", err)
		}
	}()
	return cs, nil
}

// peerKey is the context key of the peer of a control connection.
type peerKey struct{}

// peer is who is on the other end of a control connection.
type peer struct {
	cred *syscall.Ucred
	err  error // why cred is unknown
}

// peerCred asks the kernel who connected c (SO_PEERCRED: the credentials
// at connect time, which the peer cannot forge).
func peerCred(c net.Conn) (*syscall.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("read peer credentials: %T is not a unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("read peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("read peer credentials: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("read peer credentials: %w", credErr)
	}
	return cred, nil
}

// checkPeer returns nil if a peer running as uid may control a mount run
// by owner: the same user, or root.
func checkPeer(uid, owner uint32) error {
	if uid == owner || uid == 0 {
		return nil
	}
	return fmt.Errorf("only uid %d or root may control this mount", owner)
}

// requirePeer refuses requests from peers checkPeer rejects, and from peers
// whose credentials could not be read.
func requirePeer(owner uint32, next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		err := p.err
		if err == nil && p.cred == nil {
			err = errors.New("peer credentials unknown")
		}
		if err == nil {
			if err = checkPeer(p.cred.Uid, owner); err != nil {
				log.Warn("control socket: refused a request", "uid", p.cred.Uid, "pid", p.cred.Pid, "request", r.Method+" "+r.URL.Path)
			}
		}
		if err != nil {
			// One line of text/plain: askControl returns it as the error.
			http.Error(w, "walfs: "+oneLine(err), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (cs *controlServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cs.srv.Shutdown(ctx)
}

// requestUnmount asks the mount owning stateDir to flush and unmount.
func requestUnmount(ctx context.Context, stateDir string, req unmountRequest) error {
	return callControl(ctx, stateDir, "unmount", req)
}

// callControl posts req to an endpoint of the control socket that answers
// with an unmountResponse, and returns the mount's error.
func callControl(ctx context.Context, stateDir, endpoint string, req unmountRequest) error {
	out, err := askControl[unmountResponse](ctx, stateDir, endpoint, req, "ask walfs mount to "+endpoint)
	if err != nil {
		return err
	}
	if !out.OK {
		return errors.New(out.Error)
	}
	return nil
}

// askMount sends one request to the walfs serving the mount at mnt
// (askControl).
func askMount[T any](ctx context.Context, mnt, endpoint string, req any, doing string) (T, error) {
	dataDir, err := fusefs.FindWalfs(mnt)
	if err != nil {
		var zero T
		return zero, err
	}
	return askControl[T](ctx, filepath.Join(dataDir, fusefs.StateDirName), endpoint, req, doing)
}

// controlStartWait is how long a request waits for a control socket that
// does not answer (see askControl).
const controlStartWait = 3 * time.Second

// askControl sends one request to the control socket in stateDir — a GET
// when req is nil, else a POST of req as JSON — and decodes the mount's JSON
// answer. doing says what the request asks, for errors.
//
// A walfs that has just mounted opens its control socket a moment later
// (after its databases started resuming): a request that finds no socket
// answering tries again for up to controlStartWait before it reports that no
// walfs process answers.
func askControl[T any](ctx context.Context, stateDir, endpoint string, req any, doing string) (T, error) {
	deadline := time.Now().Add(controlStartWait)
	for {
		out, err := askControlOnce[T](ctx, stateDir, endpoint, req, doing)
		var nd *noDaemonError
		if err == nil || !errors.As(err, &nd) || time.Now().After(deadline) || ctx.Err() != nil {
			return out, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// askControlOnce is one attempt of askControl.
func askControlOnce[T any](ctx context.Context, stateDir, endpoint string, req any, doing string) (T, error) {
	var out T
	method, body := http.MethodGet, io.Reader(nil)
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return out, fmt.Errorf("%s: %w", doing, err)
		}
		method, body = http.MethodPost, bytes.NewReader(b)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, "http://walfs/"+endpoint, body)
	if err != nil {
		return out, err
	}
	resp, err := controlClient(filepath.Join(stateDir, controlSocketName)).Do(hreq)
	if err != nil {
		return out, controlDialError(err, doing)
	}
	defer resp.Body.Close()
	if err := refusal(resp); err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("%s: %s (is it an older walfs?)", doing, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("read the answer of walfs mount to %q: %w", endpoint, err)
	}
	return out, nil
}

// jsonRoute serves pattern (a POST) by decoding a Req from the body and
// answering with handle's Resp as JSON.
func jsonRoute[Req, Resp any](pattern string, handle func(context.Context, Req) Resp) controlRoute {
	return controlRoute{pattern: pattern, handler: func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(handle(r.Context(), req))
	}}
}

// controlClient talks HTTP over the control socket at path.
func controlClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
			switch {
			case errors.Is(err, fs.ErrPermission):
				// Not ours to reach: that says nothing about whether the
				// mount is alive, so it is no dead mount to clear.
				return nil, fmt.Errorf("%w (only the user running the mount, or root, may control it)", err)
			case err != nil:
				return nil, &noDaemonError{err: err}
			}
			return conn, nil
		},
	}}
}

// controlDialError returns the noDaemonError inside err, if any, or err
// wrapped with what the client was doing.
func controlDialError(err error, doing string) error {
	var nd *noDaemonError
	if errors.As(err, &nd) {
		return nd
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// refusal returns the mount's reason when it refused the request (403).
func refusal(resp *http.Response) error {
	if resp.StatusCode != http.StatusForbidden {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return errors.New(strings.TrimPrefix(strings.TrimSpace(string(b)), "walfs: "))
}

// noDaemonError means no walfs process answers for the mount.
type noDaemonError struct{ err error }

func (e *noDaemonError) Error() string {
	return "no walfs process answers on the control socket: " + e.err.Error()
}
func (e *noDaemonError) Unwrap() error { return e.err }
