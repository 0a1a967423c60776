package oracle

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/oracle/nodelist"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// ListNodes and GetFleetStats read the state machine's listing index and
// in-memory counts (oracle/fsm/list.go): a page costs what its rows cost,
// whatever the size of the fleet. What a request means (page sizes, order
// names, filters, orders) is package nodelist's, shared with the API test
// fixture.

// A page token is base64url(version | order | filter digest (4 bytes) |
// the state machine's cursor): the position after the previous page's last
// row. It is valid on any member and at any later state, for the same
// filters and order only.
const pageTokenVersion = 1

// filterDigest binds a page token to the filters of its listing.
func filterDigest(req *truegpuv1.ListNodesRequest) uint32 {
	h := fnv.New32a()
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(req.Status))
	binary.BigEndian.PutUint32(b[4:], req.MinScoreBp)
	h.Write(b[:])
	h.Write([]byte(req.Class))
	return h.Sum32()
}

func encodePageToken(order fsm.NodeOrder, req *truegpuv1.ListNodesRequest, cursor []byte) string {
	b := []byte{pageTokenVersion, byte(order)}
	b = binary.BigEndian.AppendUint32(b, filterDigest(req))
	return base64.RawURLEncoding.EncodeToString(append(b, cursor...))
}

// decodePageToken returns the cursor of a page token of this listing.
func decodePageToken(order fsm.NodeOrder, req *truegpuv1.ListNodesRequest) ([]byte, error) {
	if req.PageToken == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(req.PageToken)
	if err != nil || len(b) < 6 || b[0] != pageTokenVersion {
		return nil, fmt.Errorf("%w: page_token is not a token from a previous response", ErrInvalidRequest)
	}
	var digest [4]byte
	binary.BigEndian.PutUint32(digest[:], filterDigest(req))
	if b[1] != byte(order) || !bytes.Equal(b[2:6], digest[:]) {
		return nil, fmt.Errorf("%w: page_token belongs to a listing with other filters or another order_by; pass the same status, class, min_score_bp and order_by as the first page", ErrInvalidRequest)
	}
	return b[6:], nil
}

func (s *reputationService) ListNodes(ctx context.Context, req *truegpuv1.ListNodesRequest) (*truegpuv1.ListNodesResponse, error) {
	size, err := nodelist.PageSize(req.PageSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	order, err := nodelist.ParseOrder(req.OrderBy)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	cursor, err := decodePageToken(order, req)
	if err != nil {
		return nil, err
	}
	if linearizable(req.Consistency) {
		if r, ok, err := forward(ctx, s.m, req, (*memberClients).listNodes); ok {
			return r, err
		}
	}
	info, err := s.m.read(ctx, req.Consistency)
	if err != nil {
		return nil, err
	}
	page, err := s.m.fsm.ListNodes(fsm.NodeQuery{Status: req.Status, Class: req.Class, MinScoreBp: req.MinScoreBp, Order: order, Limit: size, After: cursor})
	if errors.Is(err, fsm.ErrBadCursor) {
		return nil, fmt.Errorf("%w: page_token is not a token from a previous response", ErrInvalidRequest)
	}
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.ListNodesResponse{TotalSize: page.Total, Read: info, Nodes: make([]*truegpuv1.NodeSummary, 0, len(page.Nodes))}
	for _, rec := range page.Nodes {
		resp.Nodes = append(resp.Nodes, summary(rec))
	}
	if page.Next != nil {
		resp.NextPageToken = encodePageToken(order, req, page.Next)
	}
	return resp, nil
}

func statusName(s truegpuv1.NodeStatus) string {
	return reputation.Status(s).String()
}

// timelineBuckets is how many buckets (fsm.TimelineBucketMs each) of
// GetFleetStats' timeline end at the current one.
const timelineBuckets = 30

// GetFleetStats answers from the state machine's in-memory counts and its
// timeline buckets, without reading node records.
func (s *reputationService) GetFleetStats(ctx context.Context, req *truegpuv1.GetFleetStatsRequest) (*truegpuv1.GetFleetStatsResponse, error) {
	info, err := s.m.read(ctx, truegpuv1.ReadConsistency_READ_CONSISTENCY_STALE)
	if err != nil {
		return nil, err
	}
	meta, err := s.m.fsm.Meta()
	if err != nil {
		return nil, err
	}
	counts := s.m.fsm.FleetCounts()
	resp := &truegpuv1.GetFleetStatsResponse{ByStatus: map[string]uint32{}, TotalNodes: counts.Total, TotalVerdicts: meta.TotalVerdicts, Read: info}
	for st, n := range counts.ByStatus {
		resp.ByStatus[statusName(st)] += n
	}
	classes := make([]string, 0, len(counts.ByClass))
	for c := range counts.ByClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		cc := &truegpuv1.ClassCount{Class: c, ByStatus: map[string]uint32{}}
		for st, n := range counts.ByClass[c] {
			cc.ByStatus[statusName(st)] += n
		}
		resp.ByClass = append(resp.ByClass, cc)
	}
	const bucketMs = int64(fsm.TimelineBucketMs)
	end := (s.m.cfg.Now().UnixMilli()/bucketMs + 1) * bucketMs
	start := end - timelineBuckets*bucketMs
	buckets, err := s.m.fsm.Timeline(start)
	if err != nil {
		return nil, err
	}
	resp.Timeline = make([]*truegpuv1.TimelinePoint, timelineBuckets)
	for i := range resp.Timeline {
		p := &truegpuv1.TimelinePoint{AtUnixMs: start + int64(i)*bucketMs}
		// Nodes at the end of the bucket: today's count less the nodes
		// registered after it.
		later := uint64(0)
		for _, b := range buckets {
			switch {
			case b.AtUnixMs == p.AtUnixMs:
				p.Rejected, p.Suspect, p.Accepted = uint32(b.Rejected), uint32(b.Suspect), uint32(b.Accepted)
			case b.AtUnixMs > p.AtUnixMs:
				later += b.Registered
			}
		}
		p.Nodes = uint32(uint64(counts.Total) - min(later, uint64(counts.Total)))
		resp.Timeline[i] = p
	}
	return resp, nil
}
