package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/oracle/chaos"
)

func TestParseFaults(t *testing.T) {
	all, err := parseFaults("all")
	if err != nil || len(all) != len(chaos.Faults) {
		t.Fatalf("all = %v, %v", all, err)
	}
	two, err := parseFaults("kill-leader, partition-asymmetric")
	if err != nil || len(two) != 2 || two[0] != chaos.KillLeader || two[1] != chaos.PartitionOneWay {
		t.Fatalf("two = %v, %v", two, err)
	}
	if _, err := parseFaults("kill-everyone"); err == nil || !strings.Contains(err.Error(), "kill-leader") {
		t.Fatalf("unknown fault: %v (want the list of kinds)", err)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-runs-per-fault", "0"},
		{"-faults", "nope"},
		{"-run-seed", "5"},
		{"extra"},
		{"-parallel", "0"},
		{"-table"},
		{"-table", "-journal", "/nonexistent/journal.jsonl"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}

// TestTable: -table prints the table of a journal's runs and runs nothing.
func TestTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	line := `{"campaign":7,"episodes":1,"fault":"kill-leader","index":0,"seed":7000021,"build":"abc","finished":"2026-11-30T22:23:40Z","duration_ms":1,` +
		`"row":{"Fault":"kill-leader","Runs":1,"Passed":1,"Ops":10,"Acked":4,"Lost":0,"LinViolations":0,"StaleViolations":0,"LinUndecided":0,"ForcedStops":0,"Diverged":0,"NoReports":0,"Panics":0,"Harness":0,"FaultChecks":0,"FailedSeeds":null}}`
	if err := os.WriteFile(path, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run([]string{"-table", "-journal", path, "-seed", "7", "-runs-per-fault", "100"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 of 1300 runs recorded", "abc: 1", "| kill-leader | 1 | 1 | 10 | 4 | 0 |", "| **all** | 1 | 1 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
