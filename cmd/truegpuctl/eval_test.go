package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/gpuclass"
)

// TestEvalClassesModel checks the model-only table: every required pair is
// there, honest rows expect to pass, and every pair whose hardware has at
// most two thirds of the claimed class's effective int8 throughput expects
// to be caught.
func TestEvalClassesModel(t *testing.T) {
	code, stdout, stderr := runCtl(t, "eval", "classes", "-model", "-json")
	if code != 0 {
		t.Fatalf("eval classes -model: exit %d\n%s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout)
	}
	got := map[evalPair]evalRow{}
	for _, r := range rep.Rows {
		p := evalPair{r.Actual, r.Claimed}
		if _, dup := got[p]; dup {
			t.Errorf("pair %s listed twice", p.profile())
		}
		got[p] = r
	}
	var want []evalPair
	for _, c := range gpuclass.Classes() {
		want = append(want, evalPair{c.Name, c.Name})
	}
	for _, a := range append(slices.Clone(evalClasses), gpuclass.CPU128, gpuclass.CPU128AMX) {
		for _, c := range evalClasses {
			if a != c {
				want = append(want, evalPair{a, c})
			}
		}
	}
	want = append(want, evalPair{gpuclass.H100PCIe, gpuclass.H100SXM})
	if len(got) != len(want) {
		t.Errorf("%d pairs, want %d", len(got), len(want))
	}
	for _, p := range want {
		r, ok := got[p]
		if !ok {
			t.Errorf("pair %s missing", p.profile())
			continue
		}
		a, _ := gpuclass.LookupHardware(p.Actual)
		c, _ := gpuclass.Lookup(p.Claimed)
		switch {
		case p.Actual == p.Claimed:
			if r.Expected != expectPass {
				t.Errorf("honest %s expects %q, want %q", p.profile(), r.Expected, expectPass)
			}
		case 3*effective(a) <= 2*effective(c):
			if r.Expected != expectCaught {
				t.Errorf("%s (%s of the claimed throughput) expects %q, want %q", p.profile(), r.ThroughputRatio, r.Expected, expectCaught)
			}
		}
		if r.Status != "" || r.Match != nil {
			t.Errorf("model row %s has observed columns", p.profile())
		}
	}
	// Pairs of equal throughput that differ in bandwidth or memory: the
	// memory phase catches them; the timed phase alone cannot.
	memoryPairs := []evalPair{{gpuclass.H100PCIe, gpuclass.H100SXM}, {gpuclass.A100_40, gpuclass.A100_80}, {gpuclass.H100SXM, gpuclass.H200}, {gpuclass.CPU128AMX, gpuclass.RTX4090}}
	for _, p := range memoryPairs {
		if r := got[p]; r.Expected != expectCaught || r.WalkMillis <= r.WalkDeadline {
			t.Errorf("%s expects %q (walk %d ms against %d ms), want %q by the walk", p.profile(), r.Expected, r.WalkMillis, r.WalkDeadline, expectCaught)
		}
	}
	code, stdout, stderr = runCtl(t, "eval", "classes", "-model", "-json", "-memory-target", "0")
	if code != 0 {
		t.Fatalf("eval classes -model -memory-target 0: exit %d\n%s", code, stderr)
	}
	var gemmOnly evalReport
	if err := json.Unmarshal([]byte(stdout), &gemmOnly); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout)
	}
	for _, r := range gemmOnly.Rows {
		if slices.Contains(memoryPairs, evalPair{r.Actual, r.Claimed}) && r.Expected != expectEvidence {
			t.Errorf("without a memory phase %s expects %q, want %q", evalPair{r.Actual, r.Claimed}.profile(), r.Expected, expectEvidence)
		}
	}

	code, stdout, stderr = runCtl(t, "eval", "classes", "-model")
	if code != 0 || len(dataLines(stdout)) < len(want) || !strings.Contains(stdout, "expected caught") {
		t.Errorf("eval classes -model table: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, _ := runCtl(t, "eval", "classes", "-model", "-nodes", "h100,tpu-as-h100"); code != 2 {
		t.Errorf("unknown class in -nodes: exit %d, want 2", code)
	}
}

// TestEvalClassesCluster runs a small evaluation on a development cluster
// with the link model: liars end late or rejected, honest nodes without a
// false flag.
func TestEvalClassesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a development cluster; skipped with -short")
	}
	code, stdout, stderr := runCtl(t, "eval", "classes", "-target", "1000", "-rounds", "2", "-interval", "3s",
		"-timeout", "120s", "-nodes", "h100,rtx3090-as-h100,cpu128-as-h100,a100-40gb-as-a100-80gb,l40s", "-json")
	if code != 0 {
		t.Fatalf("eval classes: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout)
	}
	if len(rep.Rows) != 5 {
		t.Fatalf("%d rows, want 5\n%s", len(rep.Rows), stdout)
	}
	for _, r := range rep.Rows {
		p := evalPair{r.Actual, r.Claimed}.profile()
		if r.Decided < 2 && r.Status != "rejected" {
			t.Errorf("%s: %d decided challenges, status %s", p, r.Decided, r.Status)
		}
		if r.honest() {
			if r.FalseFlags != 0 || r.Status == "rejected" || r.Observed != expectPass {
				t.Errorf("honest %s: status %s, %d false flags, observed %s", p, r.Status, r.FalseFlags, r.Observed)
			}
			continue
		}
		if r.Expected != expectCaught || (r.Observed != "late" && r.Observed != expectCaught) || r.Match == nil || !*r.Match {
			t.Errorf("%s: expected %s, observed %s (status %s, %d decided)", p, r.Expected, r.Observed, r.Status, r.Decided)
		}
	}
}
