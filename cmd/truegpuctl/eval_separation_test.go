package main

import (
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/gpuclass"
)

// TestSeparationTable checks the two-phase class-separation table that
// "eval classes -model" prints: honest cells say so, every pair whose
// hardware has at most two thirds of the claimed class's throughput, walk
// bandwidth or memory is caught, and no hardware at least as good in all
// three is.
func TestSeparationTable(t *testing.T) {
	tab, err := separationTable(gpuclass.DefaultTimedTargetMillis, gpuclass.DefaultWalkTargetMillis)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab) != len(separationActual) {
		t.Fatalf("%d rows, want %d", len(tab), len(separationActual))
	}
	for _, row := range tab {
		for _, s := range row {
			a, c, v := s.Actual, s.Claimed, s.verdict()
			pair := a.Name + " as " + c.Name + ": " + v
			better := effective(a) >= effective(c) && walkRate(a) >= walkRate(c) && a.MemoryBytes >= c.MemoryBytes
			switch {
			case a.Name == c.Name:
				if v != "honest" || s.caught() {
					t.Errorf("%s (first phase %d / %d ms, walk %d / %d ms)", pair, s.First, s.FirstDeadline, s.Walk, s.WalkDeadline)
				}
			case len(s.weaknesses()) > 0:
				if !s.caught() || !strings.HasPrefix(v, "**caught**") {
					t.Errorf("%s: weak in %v but not caught", pair, s.weaknesses())
				}
			case better:
				if s.caught() || v != "passes" {
					t.Errorf("%s: at least as good in every respect", pair)
				}
			}
		}
	}
	// Reasons name the phase and the cause.
	for _, tc := range []struct {
		row, col int
		want     string
	}{
		{1, 0, "**caught** (walk: memory, bandwidth)"},                   // H100-SXM as H200
		{2, 1, "**caught** (walk: bandwidth)"},                           // H100-PCIe as H100-SXM
		{3, 2, "**caught** (GEMM: throughput)"},                          // A100-80GB as H100-PCIe
		{6, 5, "**caught** (walk: memory)"},                              // RTX-4090 as L40S
		{0, 1, "passes"},                                                 // H200 as H100-SXM
		{3, 3, "honest"},                                                 // A100-80GB
		{8, 0, "**caught** (GEMM: throughput; walk: memory, bandwidth)"}, // cpu as H200
	} {
		s := tab[tc.row][tc.col]
		if got := s.verdict(); got != tc.want {
			t.Errorf("%s as %s: %q, want %q", s.Actual.Name, s.Claimed.Name, got, tc.want)
		}
	}

	code, stdout, stderr := runCtl(t, "eval", "classes", "-model")
	if code != 0 {
		t.Fatalf("eval classes -model: exit %d\n%s", code, stderr)
	}
	header := "| actual ↓ / claimed → | " + strings.Join(separationClaimed, " | ") + " |"
	cells := 0
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "| ") {
			cells += strings.Count(l, " · ")
		}
	}
	if !strings.Contains(stdout, header) || cells != len(separationActual)*len(separationClaimed) ||
		!strings.Contains(stdout, ": 52 caught, 28 pass, 0 not caught") {
		t.Errorf("the -model output lacks the separation table:\n%s", stdout)
	}
}
