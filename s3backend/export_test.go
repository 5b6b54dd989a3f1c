package s3backend

import (
	"context"
	"net"
)

// SetDialOverride sends every connection of stores created afterwards to
// dial, so wire tests can see virtual-hosted requests for real provider host
// names. Not safe for parallel tests; restore undoes it.
func SetDialOverride(dial func(ctx context.Context, network, addr string) (net.Conn, error)) (restore func()) {
	old := dialOverride
	dialOverride = dial
	return func() { dialOverride = old }
}
