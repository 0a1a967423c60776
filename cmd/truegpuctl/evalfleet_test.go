package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/gpuclass"
)

// The fleet's composition: the shares of every kind, honest nodes first
// (copiers copy them), clone and relay groups of their size, late joiners
// delayed, every profile one the fleet can build, and the same fleet for
// the same seed.
func TestComposeFleet(t *testing.T) {
	ff := fleetFlags{nodes: 1000, honest: 10, rounds: 3, interval: time.Minute, target: gpuclass.DefaultTimedTargetMillis, memory: gpuclass.DefaultWalkTargetMillis, seed: 3}
	nodes, err := composeFleet(ff)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != ff.nodes {
		t.Fatalf("%d nodes, want %d", len(nodes), ff.nodes)
	}
	count := map[string]int{}
	groups := map[string]int{}
	seenAdversary := false
	for i, n := range nodes {
		count[n.Kind]++
		if n.Kind != "honest" {
			seenAdversary = true
		} else if seenAdversary {
			t.Fatalf("honest node %d after an adversarial one", i)
		}
		if (n.Delay > 0) != (n.Kind == "late-joiner") {
			t.Fatalf("node %d (%s) has delay %v", i, n.Kind, n.Delay)
		}
		if strings.Contains(n.Profile, "@") {
			groups[n.Kind+" "+n.Profile]++
		}
		// Every profile without the fleet's own prefixes is one sim builds.
		p, _, _ := strings.Cut(strings.TrimPrefix(n.Profile, "copy-"), "@")
		if strings.HasPrefix(p, "relay-") || strings.HasPrefix(p, "clone-") {
			p = p[6:]
		}
		if _, err := sim.New(p, sim.Options{Seed: []byte{byte(i)}}); err != nil {
			t.Fatalf("node %d: profile %q: %v", i, n.Profile, err)
		}
	}
	total := 0
	for _, k := range fleetKinds[1:] {
		total += k.Percent
		want := ff.nodes * (100 - ff.honest) * k.Percent / (100 * 90)
		if count[k.Name] != want {
			t.Errorf("%s: %d nodes, want %d", k.Name, count[k.Name], want)
		}
	}
	if total != 90 {
		t.Errorf("adversarial shares add up to %d%%, want 90%%", total)
	}
	if h := count["honest"]; h < ff.nodes*ff.honest/100 || h > ff.nodes*ff.honest/100+len(fleetKinds) {
		t.Errorf("%d honest nodes, want about %d", h, ff.nodes*ff.honest/100)
	}
	for g, n := range groups {
		want := 5
		if strings.HasPrefix(g, "relay") {
			want = 4
		}
		if n > want {
			t.Errorf("group %s has %d identities, want at most %d", g, n, want)
		}
	}
	again, err := composeFleet(ff)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if nodes[i] != again[i] {
			t.Fatalf("node %d differs for the same seed: %+v and %+v", i, nodes[i], again[i])
		}
	}
}

// A small fleet through a real cluster in shadow mode: every kind is
// present in the report, every node has a decided challenge, the run's
// totals are measured, and the report shows what enforcement would have
// done (adversaries rejected) while every published status stayed neutral.
func TestEvalFleetSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster and a fleet")
	}
	ff := fleetFlags{nodes: 40, honest: 25, rounds: 1, interval: 4 * time.Second, epoch: 5 * time.Second, proofWin: 20 * time.Second,
		target: gpuclass.DefaultTimedTargetMillis, memory: gpuclass.DefaultWalkTargetMillis, timeout: 4 * time.Minute, progress: 5 * time.Second, seed: 1, shadow: true}
	nodes, err := composeFleet(ff)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := runFleetEval(context.Background(), ff, nodes, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if !rep.Complete || rep.Nodes != 40 {
		t.Fatalf("report: complete %v, %d nodes", rep.Complete, rep.Nodes)
	}
	seen := 0
	for _, k := range rep.Kinds {
		seen += k.Nodes
		if k.Decided < k.Nodes && k.Rejected < k.Nodes {
			t.Errorf("%s: %d decided challenges over %d nodes", k.Kind, k.Decided, k.Nodes)
		}
	}
	if seen != 40 {
		t.Errorf("the kinds hold %d nodes, want 40", seen)
	}
	if rep.Decided == 0 || rep.StateBytes <= 0 || rep.ClusterCPU <= 0 || rep.FleetCPU <= 0 {
		t.Errorf("totals not measured: %d decided challenges, %d state bytes, cluster CPU %v s, fleet CPU %v s", rep.Decided, rep.StateBytes, rep.ClusterCPU, rep.FleetCPU)
	}
	if rep.AdversaryCaught == 0 {
		t.Error("no adversarial node was rejected")
	}
	for st, n := range rep.Published {
		if st != "probation" {
			t.Errorf("shadow mode published %d nodes as %s", n, st)
		}
	}
	if rep.Published["probation"] != 40 {
		t.Errorf("published statuses %v, want all 40 nodes on probation", rep.Published)
	}
	var out bytes.Buffer
	if err := printFleetReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range rep.Kinds {
		if !strings.Contains(out.String(), "\n"+k.Kind+" ") {
			t.Errorf("the printed report has no row for %s:\n%s", k.Kind, out.String())
		}
	}
}
