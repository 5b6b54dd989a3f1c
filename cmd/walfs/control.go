package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The control socket lets `walfs unmount` ask a running mount to flush and
// unmount. It lives in the state dir, which only the owner can read.
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
	path := filepath.Join(stateDir, controlSocketName)
	os.Remove(path) // left by a killed mount; we hold the data dir now
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /unmount", func(w http.ResponseWriter, r *http.Request) {
		var req unmountRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp := unmountResponse{OK: true}
		if err := unmount(r.Context(), req); err != nil {
			resp = unmountResponse{Error: oneLine(err)}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	mux.HandleFunc("POST /flush", func(w http.ResponseWriter, r *http.Request) {
		var req unmountRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp := unmountResponse{OK: true}
		if err := flush(r.Context(), req.Timeout); err != nil {
			resp = unmountResponse{Error: oneLine(err)}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
	cs := &controlServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := cs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket stopped", "err", err)
		}
	}()
	return cs, nil
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

// callControl posts req to an endpoint of the control socket.
func callControl(ctx context.Context, stateDir, endpoint string, req unmountRequest) error {
	path := filepath.Join(stateDir, controlSocketName)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, &noDaemonError{err: err}
			}
			return conn, nil
		},
	}}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://walfs/"+endpoint, bytesReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(hreq)
	if err != nil {
		var nd *noDaemonError
		if errors.As(err, &nd) {
			return nd
		}
		return fmt.Errorf("ask walfs mount to %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	var out unmountResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("read answer from walfs mount: %w", err)
	}
	if !out.OK {
		return errors.New(out.Error)
	}
	return nil
}

// noDaemonError means no walfs process answers for the mount.
type noDaemonError struct{ err error }

func (e *noDaemonError) Error() string {
	return "no walfs process answers on the control socket: " + e.err.Error()
}
func (e *noDaemonError) Unwrap() error { return e.err }
