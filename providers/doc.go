// Package providers maps an S3 endpoint to a provider profile: the settings
// walfs must use to talk to that provider (addressing style, payload signing,
// checksum mode, region, extra headers, concurrency and rate caps) and the
// features it is known to support, each with a one-line reason.
//
// Provider quirks are data: one row per provider in table.go, and Detect is a
// lookup over it. The package imports only the standard library and never
// talks to the network; probing a provider belongs to s3backend.
package providers
