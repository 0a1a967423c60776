package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// orderings are the ListNodes orderings, as the server spells them.
var orderings = []string{"address", "score", "score desc", "updated desc"}

func init() {
	var (
		cf           clientFlags
		statusFilter string
		class        string
		minScore     string
		order        string
		limit        int
		linearizable bool
	)
	register(&command{
		Name:  "nodes",
		Usage: "[--status S] [--class C] [--min-score PCT] [--order O] [--limit N] [flags]",
		Short: "list nodes with status and scores by dimension",
		Long: `
Nodes lists the nodes the oracle knows, with their status, overall score and
scores by dimension (identity, capacity, liveness, correctness) as
percentages, their claimed GPU classes and their most recent reason code.

Filters run on the server. --order is one of "address" (default), "score",
"score desc", "updated desc". With -o json the output is a ListNodesResponse
(all pages merged) in the REST API's JSON encoding.

Exit status: 0 success, 1 the call failed, 2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.StringVar(&statusFilter, "status", "", "only nodes with this `status`: trusted, probation, suspect or rejected")
			fs.StringVar(&class, "class", "", "only nodes with a device of this claimed `class`, e.g. H100-SXM")
			fs.StringVar(&minScore, "min-score", "", "only nodes with at least this overall score, in `percent` (e.g. 80 or 92.5)")
			fs.StringVar(&order, "order", "address", "`ordering`: address, score, \"score desc\" or \"updated desc\"")
			fs.IntVar(&limit, "limit", 0, "show at most `N` nodes (0: all)")
			fs.BoolVar(&linearizable, "linearizable", false, "read through the leader (default: the member's local, possibly stale, state)")
		},
		Run: func(ctx *runContext, args []string) error {
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) > 0 {
				return usageError("nodes takes no arguments, got %q; filter with --status, --class, --min-score", pos)
			}
			req := &truegpuv1.ListNodesRequest{Class: class, OrderBy: order}
			if statusFilter != "" {
				st, err := parseStatus(statusFilter)
				if err != nil {
					return err
				}
				req.Status = st
			}
			if minScore != "" {
				bp, err := parsePercent(minScore)
				if err != nil {
					return usageError("--min-score: %v", err)
				}
				req.MinScoreBp = bp
			}
			if !slices.Contains(orderings, order) {
				return usageError("--order %q: use one of %q", order, orderings)
			}
			if limit < 0 {
				return usageError("--limit %d is negative", limit)
			}
			if linearizable {
				req.Consistency = truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
			}
			var resp *truegpuv1.ListNodesResponse
			err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
				resp, err = listAll(c, truegpuv1.NewReputationServiceClient(conn), req, limit)
				return cf.rpcErr("list nodes", err)
			})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(ctx.Stdout, resp)
			}
			t := newTable(ctx.Stdout, "ADDRESS", "STATUS", "SCORE", "IDENTITY", "CAPACITY", "LIVENESS", "CORRECTNESS", "CLASSES", "GPUS", "REASON", "UPDATED")
			for _, n := range resp.GetNodes() {
				d := n.GetDimensions()
				t.row(n.GetAddress(), statusWord(n.GetStatus()), pct(n.GetScoreBp()),
					pct(d.GetIdentity().GetScoreBp()), pct(d.GetCapacity().GetScoreBp()),
					pct(d.GetLiveness().GetScoreBp()), pct(d.GetCorrectness().GetScoreBp()),
					orDash(strings.Join(n.GetClasses(), ",")), strconv.Itoa(int(n.GetDeviceCount())),
					orDash(n.GetTopReason()), fmtTime(n.GetUpdatedAtUnixMs()))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(resp.GetNodes()) < int(resp.GetTotalSize()) {
				fmt.Fprintf(ctx.Stderr, "showing %d of %d nodes (--limit)\n", len(resp.GetNodes()), resp.GetTotalSize())
			}
			return nil
		},
	})
}

// listAll reads pages until the end or limit (0: no limit).
func listAll(ctx context.Context, c truegpuv1.ReputationServiceClient, req *truegpuv1.ListNodesRequest, limit int) (*truegpuv1.ListNodesResponse, error) {
	out := &truegpuv1.ListNodesResponse{}
	req.PageSize = 1000
	for {
		if limit > 0 {
			req.PageSize = int32(min(1000, limit-len(out.Nodes)))
		}
		resp, err := c.ListNodes(ctx, req)
		if err != nil {
			return nil, err
		}
		out.Nodes = append(out.Nodes, resp.GetNodes()...)
		out.TotalSize = resp.GetTotalSize()
		out.Read = resp.GetRead()
		if resp.GetNextPageToken() == "" || (limit > 0 && len(out.Nodes) >= limit) {
			out.NextPageToken = resp.GetNextPageToken()
			return out, nil
		}
		if resp.GetNextPageToken() == req.GetPageToken() {
			return nil, fmt.Errorf("the server returned the same page token %q twice; stopping", req.GetPageToken())
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// parseStatus reads a status name.
func parseStatus(s string) (truegpuv1.NodeStatus, error) {
	name := "NODE_STATUS_" + strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "NODE_STATUS_"))
	v, ok := truegpuv1.NodeStatus_value[name]
	if !ok || v == 0 {
		return 0, usageError("--status %q: use trusted, probation, suspect or rejected", s)
	}
	return truegpuv1.NodeStatus(v), nil
}

// statusWord is a status in lower case, e.g. "trusted".
func statusWord(s truegpuv1.NodeStatus) string {
	if s == truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "NODE_STATUS_"))
}

// parsePercent reads a percentage (0..100, up to two decimals) as basis
// points.
func parsePercent(s string) (uint32, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return 0, fmt.Errorf("%q is not a percentage between 0 and 100", s)
	}
	return uint32(math.Round(f * 100)), nil
}

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
