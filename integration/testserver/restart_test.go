package testserver

import (
	"net/http"
	"testing"
)

// A restarted server answers on the same endpoint with the same data: the
// bucket created before the outage is still there.
func TestRestartKeepsEndpointAndData(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...Option) *Server{
		"minio": StartMinIO, "versitygw": StartVersityGW,
	} {
		t.Run(name, func(t *testing.T) {
			s := start(t)
			endpoint, pid := s.Endpoint, s.PID()
			s.Stop()
			if _, err := http.Get(endpoint); err == nil {
				t.Fatal("server still answers after Stop")
			}
			s.Restart(t)
			if s.Endpoint != endpoint || s.PID() == pid {
				t.Fatalf("after Restart: endpoint %s pid %d, want endpoint %s and a new process", s.Endpoint, s.PID(), endpoint)
			}
			status, body, err := s.putBucket(s.Bucket)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusConflict {
				t.Fatalf("creating the existing bucket again: HTTP %d, want 409 (the bucket survived the restart)\n%s", status, body)
			}
			s.Restart(t) // also restarts a running server
			s.CreateBucket(t, "after-restart")
		})
	}
}
