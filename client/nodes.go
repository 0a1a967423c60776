package client

import (
	"context"
	"iter"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Orderings of Nodes, as the server spells them.
const (
	OrderByAddress     = "address"
	OrderByScore       = "score"
	OrderByScoreDesc   = "score desc"
	OrderByUpdatedDesc = "updated desc"
)

// NodeQuery filters and orders Nodes. The zero value lists every node by
// address. Filters run on the server.
type NodeQuery struct {
	// Status keeps nodes with this status (unset: any).
	Status truegpuv1.NodeStatus
	// Class keeps nodes with a device of this claimed class, e.g.
	// "H100-SXM".
	Class string
	// MinScoreBP keeps nodes with at least this overall score, in basis
	// points (10000 = 100%).
	MinScoreBP uint32
	// OrderBy is one of the OrderBy constants. Default OrderByAddress.
	OrderBy string
	// PageSize is the number of nodes fetched per call (default 100, at
	// most 1000).
	PageSize int32
	// Linearizable reads through the leader; the default reads the
	// member's own replica, which may lag by the replication delay.
	Linearizable bool
}

func (q NodeQuery) request() *truegpuv1.ListNodesRequest {
	r := &truegpuv1.ListNodesRequest{Status: q.Status, Class: q.Class, MinScoreBp: q.MinScoreBP, OrderBy: q.OrderBy, PageSize: q.PageSize}
	if q.Linearizable {
		r.Consistency = truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
	}
	return r
}

// Nodes pages through the nodes matching q, in q's order, fetching the
// next page when the loop reaches it. A failed call ends the sequence
// with its error; breaking out of the loop stops fetching.
//
//	for n, err := range c.Nodes(ctx, client.NodeQuery{Class: "H100-SXM"}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(n.Address, n.ScoreBp)
//	}
func (c *Client) Nodes(ctx context.Context, q NodeQuery) iter.Seq2[*truegpuv1.NodeSummary, error] {
	return func(yield func(*truegpuv1.NodeSummary, error) bool) {
		req := q.request()
		for {
			resp, err := c.reputation.ListNodes(ctx, req)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, n := range resp.Nodes {
				if !yield(n, nil) {
					return
				}
			}
			if resp.NextPageToken == "" {
				return
			}
			req.PageToken = resp.NextPageToken
		}
	}
}

// ListNodes returns up to limit nodes matching q (limit <= 0: all of
// them), fetching as many pages as it needs.
func (c *Client) ListNodes(ctx context.Context, q NodeQuery, limit int) ([]*truegpuv1.NodeSummary, error) {
	if limit > 0 && q.PageSize == 0 && limit < 1000 {
		q.PageSize = int32(limit)
	}
	var out []*truegpuv1.NodeSummary
	for n, err := range c.Nodes(ctx, q) {
		if err != nil {
			return out, err
		}
		out = append(out, n)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// Node returns one node's reputation: status, scores by dimension,
// reasons with evidence, devices, counters and recent challenges.
func (c *Client) Node(ctx context.Context, address string, linearizable bool) (*truegpuv1.NodeReputation, error) {
	req := &truegpuv1.GetNodeRequest{Address: address}
	if linearizable {
		req.Consistency = truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
	}
	resp, err := c.reputation.GetNode(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.Node, nil
}

// FleetStats returns node counts by claimed class and status.
func (c *Client) FleetStats(ctx context.Context) (*truegpuv1.GetFleetStatsResponse, error) {
	return c.reputation.GetFleetStats(ctx, &truegpuv1.GetFleetStatsRequest{})
}

// Cluster returns the members, the leader and the Raft indexes as the
// dialled member sees them.
func (c *Client) Cluster(ctx context.Context) (*truegpuv1.GetClusterResponse, error) {
	return c.admin.GetCluster(ctx, &truegpuv1.GetClusterRequest{})
}
