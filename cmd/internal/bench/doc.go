// Package bench holds the SQLite workloads of `walfs bench`. Each workload
// runs with a real SQLite driver (modernc.org/sqlite) against a directory,
// so the same code measures the native disk and a walfs mount. It also
// holds the body of the writer processes of the several-processes workload
// (RunWorker; walfs bench starts them by re-executing itself) and the
// commit-to-store lag probes. It never starts or stops a mount: cmd/walfs
// does, and passes the mount in as a directory and a Settle function.
package bench
