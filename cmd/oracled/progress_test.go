package main

import (
	"strings"
	"testing"

	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestEpochLineWithoutFleet covers oracled dev with -honest 0 and an empty
// -adversaries: a dev cluster with no simulated fleet prints its epoch lines without the
// fleet's statistics instead of dereferencing a fleet that does not exist.
func TestEpochLineWithoutFleet(t *testing.T) {
	meta := &truegpuv1.MetaState{NodeCount: 3, TotalVerdicts: 7}
	if got, want := epochLine(2, meta, nil), "oracled dev: epoch 2 signed; 3 nodes, 7 verdicts"; got != want {
		t.Fatalf("without a fleet: %q, want %q", got, want)
	}
	f := &devcluster.Fleet{}
	f.Stats.Accepted.Store(5)
	f.Stats.Rejected.Store(1)
	if got := epochLine(2, meta, f); !strings.HasSuffix(got, "(fleet: 5 accepted, 1 rejected)") {
		t.Fatalf("with a fleet: %q", got)
	}
}
