package main

import "github.com/walfs/walfs/wal/replicate"

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
	return o
}
