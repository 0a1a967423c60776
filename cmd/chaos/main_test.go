package main

import (
	"io"
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
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}
