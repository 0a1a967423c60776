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

// parsePercent reads a percentage (0..100, up to two decimals) as basis
// points.
func parsePercent(s string) (uint32, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return 0, fmt.Errorf("%q is not a percentage between 0 and 100", s)
	}
	return uint32(math.Round(f * 100)), nil
}
