// Package api is the gateway's HTTP edge (docs/api.yaml): the routes, the
// signed-request middleware (the signature, then the account's
// authorization of this gateway), the handlers of uploads (sessions,
// one-shot objects, multipart files), reads (downloads with Range,
// metadata, locations, lists, nodes), deletes and the peer routes, and one
// table (errors.go) from the parts' domain errors to HTTP statuses and JSON
// codes. Handlers only translate: ingest accepts bytes, read serves them,
// the pipeline queue orders deletes with distribution.
package api
