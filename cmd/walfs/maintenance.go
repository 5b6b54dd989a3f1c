package main

import (
	"github.com/walfs/walfs/s3backend"
	"github.com/walfs/walfs/wal/replicate"
)

// maintenanceOptions turns the mount settings into the replicator's
// schedule; on the command line 0 turns a feature off.
func maintenanceOptions(cfg *settings) replicate.MaintenanceOptions {
	o := replicate.MaintenanceOptions{SnapshotInterval: cfg.SnapshotInterval, Retention: cfg.Retention}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = -1
	}
	if o.Retention == 0 {
		o.Retention = -1
	}
	// A file replica is read as cheaply as a local cache of it would be.
	if res, err := s3backend.Resolve(cfg.Replica); err == nil && res.Type == "file" {
		o.NoCache = true
	}
	return o
}
