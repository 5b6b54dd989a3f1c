package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only when WALFS_PPROF is set
	"os"
)

// startPprof serves Go's profiler on the address in WALFS_PPROF (for example
// 127.0.0.1:6060), for diagnosing performance of a running mount.
func startPprof(log *slog.Logger) {
	addr := os.Getenv("WALFS_PPROF")
	if addr == "" {
		return
	}
	log.Info("serving profiler", "addr", addr)
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Error("profiler stopped", "err", err)
		}
	}()
}
