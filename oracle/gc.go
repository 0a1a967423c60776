package oracle

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector target oracled runs with unless GOGC
// is set. A member's live heap is small (state is in Pebble, outside the Go
// heap), while serving allocates briefly per request; collecting at 200%
// growth instead of 100% halves collection work for a few tens of MiB.
const GCPercent = 200

// TuneGC sets the collector target to GCPercent unless the GOGC environment
// variable chooses one. oracled calls it at start, and the cluster
// benchmarks call it so that they measure what oracled runs.
func TuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(GCPercent)
	}
}
