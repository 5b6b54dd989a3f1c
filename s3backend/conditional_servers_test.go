package s3backend_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/walfs/walfs/integration/testserver"
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/s3backend/storetest"
)

// Conditional-write conformance against the real servers: both honour
// If-None-Match and If-Match, so the lease can rely on them there.

func TestS3ConditionalConformanceMinIO(t *testing.T) {
	runServerConditional(t, testserver.StartMinIO(t))
}

func TestS3ConditionalConformanceVersityGW(t *testing.T) {
	runServerConditional(t, testserver.StartVersityGW(t))
}

func runServerConditional(t *testing.T, srv *testserver.Server) {
	var n atomic.Int64
	storetest.RunConditional(t, func(t *testing.T) s3backend.Store {
		return newServerStore(t, srv, fmt.Sprintf("conditional/%d", n.Add(1)))
	})
}
