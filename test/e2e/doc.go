// Package e2e holds the whole-system tests: each starts a network of real
// deoss processes (validators, gateways, storage nodes) on 127.0.0.1 ports
// with per-test folders, and kills, stops and restarts them while files go
// in and out. Everything is in _test.go files; this package has no API.
//
// The short suite runs with `go test ./...`; -short skips it, and the
// benchmarks run with `go test -run '^$' -bench . ./test/e2e`.
package e2e
