//go:build race

package codec

// raceEnabled: the race detector charges every byte a test copies or hashes
// (80% of the time in range bookkeeping), so the volume tests sample under
// -race; .ci/run also runs this package without -race at full volume.
const raceEnabled = true
