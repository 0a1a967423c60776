package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func init() {
	var (
		cf           clientFlags
		linearizable bool
		history      int
	)
	register(&command{
		Name:  "node",
		Usage: "ADDRESS [flags]",
		Short: "show one node: scores, reasons and evidence, devices, challenges",
		Long: `
Node shows one node's reputation: status and overall score, scores and
confidence by dimension, the reasons behind its status with their evidence
(challenge ids, Raft indexes, related nodes), its devices and fingerprints,
and its recent challenges with commitment latency against its class profile.

With -o json the output is a GetNodeResponse in the REST API's JSON encoding.

Exit status: 0 success, 1 the call failed (including an unknown node),
2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.BoolVar(&linearizable, "linearizable", false, "read through the leader (default: the member's local, possibly stale, state)")
			fs.IntVar(&history, "challenges", 10, "show at most `N` recent challenges in the table output")
		},
		Run: func(ctx *runContext, args []string) error {
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) != 1 {
				return usageError("node takes one ADDRESS, got %d arguments", len(pos))
			}
			req := &truegpuv1.GetNodeRequest{Address: pos[0]}
			if linearizable {
				req.Consistency = truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
			}
			var resp *truegpuv1.GetNodeResponse
			err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
				resp, err = truegpuv1.NewReputationServiceClient(conn).GetNode(c, req)
				return cf.rpcErr("get node "+pos[0], err)
			})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(ctx.Stdout, resp)
			}
			return printNode(ctx, resp.GetNode(), history)
		},
	})
}

func printNode(ctx *runContext, n *truegpuv1.NodeReputation, history int) error {
	w := ctx.Stdout
	t := newTable(w)
	t.row("Address:", n.GetAddress())
	t.row("Status:", statusWord(n.GetStatus()))
	t.row("Score:", pct(n.GetScoreBp()))
	t.row("Registered:", fmtTime(n.GetRegisteredAtUnixMs()))
	t.row("Updated:", fmtTime(n.GetUpdatedAtUnixMs()))
	c := n.GetCounters()
	t.row("Challenges:", fmt.Sprintf("%d issued, %d accepted, %d rejected, %d missed", c.GetIssued(), c.GetAccepted(), c.GetRejected(), c.GetMissed()))
	if err := t.flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nDimensions:")
	t = newTable(w, "  DIMENSION", "SCORE", "CONFIDENCE")
	d := n.GetDimensions()
	for _, dim := range []struct {
		name string
		s    *truegpuv1.DimensionScore
	}{{"identity", d.GetIdentity()}, {"capacity", d.GetCapacity()}, {"liveness", d.GetLiveness()}, {"correctness", d.GetCorrectness()}} {
		t.row("  "+dim.name, pct(dim.s.GetScoreBp()), pct(dim.s.GetConfidenceBp()))
	}
	if err := t.flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nReasons:")
	if len(n.GetReasons()) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, r := range n.GetReasons() {
		fmt.Fprintf(w, "  %s", r.GetCode())
		if r.GetDetail() != "" {
			fmt.Fprintf(w, ": %s", r.GetDetail())
		}
		fmt.Fprintln(w)
		for _, e := range r.GetEvidence() {
			var parts []string
			if e.GetChallengeId() != "" {
				parts = append(parts, "challenge "+e.GetChallengeId())
			}
			if e.GetAppliedIndex() != 0 {
				parts = append(parts, fmt.Sprintf("index %d", e.GetAppliedIndex()))
			}
			if e.GetAtUnixMs() != 0 {
				parts = append(parts, fmtTime(e.GetAtUnixMs()))
			}
			if len(e.GetRelatedAddresses()) > 0 {
				parts = append(parts, "related "+strings.Join(e.GetRelatedAddresses(), ", "))
			}
			fmt.Fprintf(w, "    evidence: %s\n", strings.Join(parts, ", "))
		}
	}

	fmt.Fprintln(w, "\nDevices:")
	t = newTable(w, "  INDEX", "CLASS", "NAME", "UUID", "MEMORY", "PCI BUS", "CC", "DRIVER")
	for _, dev := range n.GetDevices() {
		fp := dev.GetFingerprint()
		t.row(fmt.Sprintf("  %d", dev.GetIndex()), dev.GetClaimedClass(), orDash(fp.GetName()), orDash(fp.GetUuid()),
			fmt.Sprintf("%d GiB", fp.GetMemoryTotalBytes()>>30), orDash(fp.GetPciBusId()),
			fmt.Sprintf("%d.%d", fp.GetComputeCapabilityMajor(), fp.GetComputeCapabilityMinor()), orDash(fp.GetDriverVersion()))
	}
	if err := t.flush(); err != nil {
		return err
	}

	ch := n.GetRecentChallenges()
	fmt.Fprintf(w, "\nRecent challenges (%d of %d shown, newest first):\n", min(len(ch), history), len(ch))
	t = newTable(w, "  CHALLENGE", "GPU", "ISSUED", "LATENCY", "EXPECTED", "OUTCOME", "REASON", "STORM")
	for _, c := range ch[:min(len(ch), history)] {
		lat := "-"
		if c.GetCommitLatencyMs() > 0 {
			lat = fmt.Sprintf("%d ms", c.GetCommitLatencyMs())
		}
		t.row("  "+c.GetChallengeId(), strconv.Itoa(int(c.GetDeviceIndex())), fmtTime(c.GetIssuedAtUnixMs()), lat,
			fmt.Sprintf("%d ms", c.GetExpectedLatencyMs()), orDash(c.GetOutcome()), orDash(c.GetReason()), orDash(c.GetStormId()))
	}
	return t.flush()
}
