package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/oracle/scaleeval"
)

// TestEvalScaleUsage checks that bad flags and arguments exit 2 with a
// message naming the flag.
func TestEvalScaleUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-nodes", "5"}, "-nodes"},
		{[]string{"-decided", "1.5"}, "-decided"},
		{[]string{"-reads", "3"}, "-reads"},
		{[]string{"-clients", "0"}, "-clients"},
		{[]string{"-fill-time", "-1s"}, "-fill-time"},
		{[]string{"extra"}, "no arguments"},
	} {
		code, _, stderr := runCtl(t, append([]string{"eval", "scale"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("eval scale %v: exit %d, stderr %q; want 2 naming %s", c.args, code, stderr, c.want)
		}
	}
}

// TestEvalScaleTiny runs the command on a tiny fleet and checks its JSON
// report's shape; timings are not asserted.
func TestEvalScaleTiny(t *testing.T) {
	code, stdout, stderr := runCtl(t, "eval", "scale", "-nodes", "300", "-reads", "50", "-clients", "2", "-json", "-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("eval scale: exit %d\n%s", code, stderr)
	}
	var rep scaleeval.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, stdout)
	}
	if rep.Nodes != 300 || rep.Requested != 300 || rep.EpochLeaves != 300 {
		t.Errorf("nodes %d (asked %d), epoch leaves %d; want 300", rep.Nodes, rep.Requested, rep.EpochLeaves)
	}
	if rep.StateBytesPerNode <= 0 || rep.GetNode.PerSecond <= 0 || rep.SnapshotBytes <= 0 || rep.PeakRSS <= 0 {
		t.Errorf("figures missing: %+v", rep)
	}
	if rep.SourceStateHash == "" || rep.SourceStateHash != rep.RestoredStateHash {
		t.Errorf("restored state hash %q, leader's %q", rep.RestoredStateHash, rep.SourceStateHash)
	}
	if !strings.Contains(stderr, "scale: registered 300/300 nodes") {
		t.Errorf("no progress on standard error:\n%s", stderr)
	}
}
