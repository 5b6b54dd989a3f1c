// Package testserver starts real S3 servers (MinIO, versitygw) on 127.0.0.1
// for tests, from the pinned binaries that .ci/tools installs into a cache.
//
// It is ordinary (non-test) code so that tests in any package can use it. It
// imports only the standard library (it signs its one bucket-creation request
// itself), so tests that use it check walfs's S3 code against independent
// servers rather than against walfs's own client. It never downloads or
// builds anything, never listens beyond loopback, and stops only the
// processes it started, by PID.
package testserver
