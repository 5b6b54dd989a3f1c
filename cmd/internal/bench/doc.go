// Package bench holds the standard SQLite workloads of `walfs bench`. Each
// workload runs with a real SQLite driver (modernc.org/sqlite) against a
// directory, so the same code measures the native disk and a walfs mount.
package bench
