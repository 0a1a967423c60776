package main

import (
	"testing"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestShadowNote: a progress line says what enforcement would have
// published for a shadow report, and nothing for an enforcing one.
func TestShadowNote(t *testing.T) {
	if got := shadowNote(&truegpuv1.EpochReport{EnforcedByStatus: map[string]uint32{"rejected": 3}}); got != "" {
		t.Fatalf("enforcing report: %q", got)
	}
	r := &truegpuv1.EpochReport{Shadow: true, EnforcedByStatus: map[string]uint32{"rejected": 9, "trusted": 2, "probation": 1}}
	want := "; shadow mode: every node published as probation, enforcement would have published 2 trusted, 1 probation, 9 rejected"
	if got := shadowNote(r); got != want {
		t.Fatalf("shadow report: %q, want %q", got, want)
	}
	if got := shadowNote(&truegpuv1.EpochReport{Shadow: true}); got != "; shadow mode: every node published as probation, enforcement would have published no nodes" {
		t.Fatalf("empty shadow report: %q", got)
	}
}
