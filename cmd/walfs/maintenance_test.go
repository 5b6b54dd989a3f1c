package main

import (
	"testing"

	"github.com/walfs/walfs/s3backend"
)

// A file replica keeps no compaction cache (its reads are as cheap as the
// cache's); a store reached over the network does.
func TestMaintenanceCache(t *testing.T) {
	for _, tc := range []struct {
		url     string
		noCache bool
	}{
		{"file:///var/lib/walfs/replica", true},
		{"/var/lib/walfs/replica", true},
		{"s3://bucket/app?endpoint=http://127.0.0.1:9000&region=us-east-1", false},
	} {
		o := maintenanceOptions(&settings{Replica: s3backend.Config{URL: tc.url}})
		if o.NoCache != tc.noCache {
			t.Errorf("%s: NoCache %v, want %v", tc.url, o.NoCache, tc.noCache)
		}
	}
}
