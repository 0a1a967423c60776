// Package apitest provides fixed-data implementations of the truegpu.v1
// services for testing API clients: the REST gateway, the dashboard and
// truegpuctl. It serves a deterministic, realistic-looking fleet (trusted,
// probation, suspect and rejected nodes with reasons, evidence and challenge
// histories), a three-member cluster and signed-looking epoch reports.
//
// It is not an oracle: nothing is verified or replicated, and the report
// signatures and Merkle proofs are placeholders of the right shape. Tests of
// the oracle itself use the real member.
package apitest

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/nodelist"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Fixture holds the data the services serve. Fields may be changed by a test
// before it starts serving; use the methods afterwards.
type Fixture struct {
	mu sync.Mutex

	nodes   []*truegpuv1.NodeReputation // sorted by address
	fleet   *truegpuv1.GetFleetStatsResponse
	cluster *truegpuv1.GetClusterResponse
	health  *truegpuv1.GetHealthResponse
	reports map[uint64]*truegpuv1.EpochReport

	// fail makes a method ("GetNode", "ListNodes", ...) return an error.
	fail map[string]error
	// lastMD is the incoming metadata of the most recent call.
	lastMD metadata.MD

	watchers map[chan *truegpuv1.ScoreChange]struct{}
	nextIdx  uint64
}

// ServedBy is the member id the fixture reports as serving reads.
const ServedBy = "oracle-1"

// FailWith makes every later call of method (e.g. "GetNode") return err.
// A nil err clears it.
func (f *Fixture) FailWith(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, method)
		return
	}
	f.fail[method] = err
}

// LastMetadata returns the incoming gRPC metadata of the most recent call.
func (f *Fixture) LastMetadata() metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastMD.Copy()
}

// Addresses returns the addresses of all nodes, sorted.
func (f *Fixture) Addresses() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.nodes))
	for i, n := range f.nodes {
		out[i] = n.GetAddress()
	}
	return out
}

// Node returns a copy of the node with address (any case), or nil.
func (f *Fixture) Node(address string) *truegpuv1.NodeReputation {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.find(address); n != nil {
		return proto.CloneOf(n)
	}
	return nil
}

// Publish applies a score change to the node it names and sends it to every
// open WatchScores stream that selects the node.
func (f *Fixture) Publish(c *truegpuv1.ScoreChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c = proto.CloneOf(c)
	f.nextIdx++
	if c.AppliedIndex == 0 {
		c.AppliedIndex = f.nextIdx
	}
	if n := f.find(c.GetAddress()); n != nil {
		c.OldScoreBp, c.OldStatus = n.ScoreBp, n.Status
		n.ScoreBp, n.Status = c.GetNewScoreBp(), c.GetNewStatus()
		n.UpdatedAtUnixMs = c.GetAtUnixMs()
		if c.GetReason() != "" {
			n.Reasons = append([]*truegpuv1.Reason{{Code: c.GetReason(), Detail: "score change published by the test",
				Evidence: []*truegpuv1.Evidence{{AppliedIndex: c.AppliedIndex, AtUnixMs: c.GetAtUnixMs()}}}}, n.Reasons...)
		}
	}
	for ch := range f.watchers {
		select {
		case ch <- c:
		default: // a slow watcher misses changes, as with the real oracle's bounded buffers
		}
	}
}

// WatcherCount returns the number of open WatchScores streams.
func (f *Fixture) WatcherCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

func (f *Fixture) find(address string) *truegpuv1.NodeReputation {
	for _, n := range f.nodes {
		if strings.EqualFold(n.GetAddress(), address) {
			return n
		}
	}
	return nil
}

// begin records the call's metadata and returns the injected failure, if any.
func (f *Fixture) begin(ctx context.Context, method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	f.lastMD = md.Copy()
	return f.fail[method]
}

func readInfo() *truegpuv1.ReadInfo {
	return &truegpuv1.ReadInfo{ServedBy: ServedBy, AppliedIndex: 48213}
}

// Register registers the four services on s.
func (f *Fixture) Register(s *grpc.Server) {
	truegpuv1.RegisterReputationServiceServer(s, reputationServer{f: f})
	truegpuv1.RegisterFeedServiceServer(s, feedServer{f: f})
	truegpuv1.RegisterAdminServiceServer(s, adminServer{f: f})
	truegpuv1.RegisterNodeServiceServer(s, nodeServer{})
}

// Serve serves f on a gRPC server listening on 127.0.0.1 and returns the
// server's address and a client connection to it. Both stop when the test
// ends.
func Serve(tb testing.TB, f *Fixture) (addr string, conn *grpc.ClientConn) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("apitest: listen: %v", err)
	}
	s := grpc.NewServer()
	f.Register(s)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("apitest: dial: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return lis.Addr().String(), conn
}

type reputationServer struct {
	truegpuv1.UnimplementedReputationServiceServer
	f *Fixture
}

func (s reputationServer) GetNode(ctx context.Context, req *truegpuv1.GetNodeRequest) (*truegpuv1.GetNodeResponse, error) {
	if err := s.f.begin(ctx, "GetNode"); err != nil {
		return nil, err
	}
	if _, err := ethcrypto.ParseAddress(req.GetAddress()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "address %q is not a 0x-prefixed 20-byte hex address", req.GetAddress())
	}
	n := s.f.Node(req.GetAddress())
	if n == nil {
		return nil, status.Errorf(codes.NotFound, "node %s is not registered", req.GetAddress())
	}
	return &truegpuv1.GetNodeResponse{Node: n, Read: readInfo()}, nil
}

// ListNodes filters and orders as the oracle's ListNodes does, ties
// included (package nodelist holds both's semantics), and pages by offset:
// page tokens are opaque offsets.
func (s reputationServer) ListNodes(ctx context.Context, req *truegpuv1.ListNodesRequest) (*truegpuv1.ListNodesResponse, error) {
	if err := s.f.begin(ctx, "ListNodes"); err != nil {
		return nil, err
	}
	size, err := nodelist.PageSize(req.GetPageSize())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	order, err := nodelist.ParseOrder(req.GetOrderBy())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	offset := 0
	if t := req.GetPageToken(); t != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(t, "o"))
		if err != nil || !strings.HasPrefix(t, "o") || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "page_token %q is not a token from a previous response", t)
		}
		offset = n
	}
	s.f.mu.Lock()
	var rows []*truegpuv1.NodeSummary
	for _, n := range s.f.nodes {
		sum := summarize(n)
		if !nodelist.Keep(req, sum) {
			continue
		}
		rows = append(rows, sum)
	}
	s.f.mu.Unlock()
	slices.SortFunc(rows, func(a, b *truegpuv1.NodeSummary) int { return nodelist.Compare(order, a, b) })
	resp := &truegpuv1.ListNodesResponse{TotalSize: uint32(len(rows)), Read: readInfo()}
	if offset < len(rows) {
		end := min(offset+size, len(rows))
		resp.Nodes = rows[offset:end]
		if end < len(rows) {
			resp.NextPageToken = "o" + strconv.Itoa(end)
		}
	}
	return resp, nil
}

func summarize(n *truegpuv1.NodeReputation) *truegpuv1.NodeSummary {
	var classes []string
	for _, d := range n.GetDevices() {
		if !slices.Contains(classes, d.GetClaimedClass()) {
			classes = append(classes, d.GetClaimedClass())
		}
	}
	slices.Sort(classes)
	top := ""
	if len(n.GetReasons()) > 0 {
		top = n.GetReasons()[0].GetCode()
	}
	return &truegpuv1.NodeSummary{
		Address:         n.GetAddress(),
		Status:          n.GetStatus(),
		ScoreBp:         n.GetScoreBp(),
		Dimensions:      proto.CloneOf(n.GetDimensions()),
		Classes:         classes,
		DeviceCount:     uint32(len(n.GetDevices())),
		TopReason:       top,
		UpdatedAtUnixMs: n.GetUpdatedAtUnixMs(),
	}
}

func (s reputationServer) WatchScores(req *truegpuv1.WatchScoresRequest, stream grpc.ServerStreamingServer[truegpuv1.WatchScoresResponse]) error {
	if err := s.f.begin(stream.Context(), "WatchScores"); err != nil {
		return err
	}
	ch := make(chan *truegpuv1.ScoreChange, 64)
	s.f.mu.Lock()
	s.f.watchers[ch] = struct{}{}
	s.f.mu.Unlock()
	defer func() {
		s.f.mu.Lock()
		delete(s.f.watchers, ch)
		s.f.mu.Unlock()
	}()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case c := <-ch:
			if len(req.GetAddresses()) > 0 && !slices.ContainsFunc(req.GetAddresses(), func(a string) bool {
				return strings.EqualFold(a, c.GetAddress())
			}) {
				continue
			}
			if err := stream.Send(&truegpuv1.WatchScoresResponse{Change: c}); err != nil {
				return err
			}
		}
	}
}

func (s reputationServer) GetFleetStats(ctx context.Context, _ *truegpuv1.GetFleetStatsRequest) (*truegpuv1.GetFleetStatsResponse, error) {
	if err := s.f.begin(ctx, "GetFleetStats"); err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	resp := proto.CloneOf(s.f.fleet)
	// Counts follow the current node table, so published changes show up.
	resp.ByStatus = map[string]uint32{}
	byClass := map[string]map[string]uint32{}
	for _, n := range s.f.nodes {
		st := StatusName(n.GetStatus())
		resp.ByStatus[st]++
		for _, c := range summarize(n).GetClasses() {
			if byClass[c] == nil {
				byClass[c] = map[string]uint32{}
			}
			byClass[c][st]++
		}
	}
	resp.ByClass = nil
	for _, c := range sortedKeys(byClass) {
		resp.ByClass = append(resp.ByClass, &truegpuv1.ClassCount{Class: c, ByStatus: byClass[c]})
	}
	resp.TotalNodes = uint32(len(s.f.nodes))
	resp.Read = readInfo()
	return resp, nil
}

// StatusName is the lower-case status name used in fleet statistics.
func StatusName(s truegpuv1.NodeStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "NODE_STATUS_"))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type feedServer struct {
	truegpuv1.UnimplementedFeedServiceServer
	f *Fixture
}

func (s feedServer) GetLatestReport(ctx context.Context, req *truegpuv1.GetLatestReportRequest) (*truegpuv1.GetLatestReportResponse, error) {
	if err := s.f.begin(ctx, "GetLatestReport"); err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	var best *truegpuv1.EpochReport
	for _, r := range s.f.reports {
		if (r.GetComplete() || req.GetIncludeIncomplete()) && (best == nil || r.GetEpoch() > best.GetEpoch()) {
			best = r
		}
	}
	if best == nil {
		return nil, status.Error(codes.NotFound, "no epoch report has been published yet")
	}
	return &truegpuv1.GetLatestReportResponse{Report: proto.CloneOf(best), Read: readInfo()}, nil
}

func (s feedServer) GetReport(ctx context.Context, req *truegpuv1.GetReportRequest) (*truegpuv1.GetReportResponse, error) {
	if err := s.f.begin(ctx, "GetReport"); err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	r, ok := s.f.reports[req.GetEpoch()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no report for epoch %d", req.GetEpoch())
	}
	return &truegpuv1.GetReportResponse{Report: proto.CloneOf(r), Read: readInfo()}, nil
}

func (s feedServer) GetNodeProof(ctx context.Context, req *truegpuv1.GetNodeProofRequest) (*truegpuv1.GetNodeProofResponse, error) {
	if err := s.f.begin(ctx, "GetNodeProof"); err != nil {
		return nil, err
	}
	if _, err := ethcrypto.ParseAddress(req.GetAddress()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "address %q is not a 0x-prefixed 20-byte hex address", req.GetAddress())
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	r, ok := s.f.reports[req.GetEpoch()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no report for epoch %d", req.GetEpoch())
	}
	n := s.f.find(req.GetAddress())
	if n == nil {
		return nil, status.Errorf(codes.NotFound, "node %s has no leaf in epoch %d", req.GetAddress(), req.GetEpoch())
	}
	leaf := ethcrypto.Keccak256([]byte(n.GetAddress()), []byte(strconv.FormatUint(uint64(n.GetScoreBp()), 10)))
	resp := &truegpuv1.GetNodeProofResponse{
		Epoch: r.GetEpoch(), Address: n.GetAddress(), ScoreBp: n.GetScoreBp(), Status: n.GetStatus(),
		Leaf: leaf[:], Root: r.GetRoot(),
	}
	h := leaf
	for i := range 6 {
		h = ethcrypto.Keccak256(h[:], []byte{byte(i)})
		resp.Proof = append(resp.Proof, slices.Clone(h[:]))
	}
	return resp, nil
}

type adminServer struct {
	truegpuv1.UnimplementedAdminServiceServer
	f *Fixture
}

func (s adminServer) GetCluster(ctx context.Context, _ *truegpuv1.GetClusterRequest) (*truegpuv1.GetClusterResponse, error) {
	if err := s.f.begin(ctx, "GetCluster"); err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	c := proto.CloneOf(s.f.cluster)
	c.NodeCount = uint32(len(s.f.nodes))
	return c, nil
}

func (s adminServer) GetHealth(ctx context.Context, _ *truegpuv1.GetHealthRequest) (*truegpuv1.GetHealthResponse, error) {
	if err := s.f.begin(ctx, "GetHealth"); err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return proto.CloneOf(s.f.health), nil
}

// SetHealth replaces the health the member reports.
func (f *Fixture) SetHealth(h *truegpuv1.GetHealthResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health = proto.CloneOf(h)
}

func (s adminServer) JoinMember(ctx context.Context, req *truegpuv1.JoinMemberRequest) (*truegpuv1.JoinMemberResponse, error) {
	if err := s.f.begin(ctx, "JoinMember"); err != nil {
		return nil, err
	}
	if req.GetId() == "" || req.GetRaftAddress() == "" {
		return nil, status.Error(codes.InvalidArgument, "a member needs an id and a raft address")
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, m := range s.f.cluster.GetMembers() {
		if m.GetId() == req.GetId() {
			return nil, status.Errorf(codes.AlreadyExists, "member %q is already in the cluster", req.GetId())
		}
	}
	s.f.cluster.Members = append(s.f.cluster.Members, &truegpuv1.Member{
		Id: req.GetId(), RaftAddress: req.GetRaftAddress(), GrpcAddress: req.GetGrpcAddress(),
		HttpAddress: req.GetHttpAddress(), SignerAddress: req.GetSignerAddress(), Suffrage: "voter",
	})
	slices.SortFunc(s.f.cluster.Members, func(a, b *truegpuv1.Member) int { return strings.Compare(a.GetId(), b.GetId()) })
	s.f.cluster.CommitIndex++
	return &truegpuv1.JoinMemberResponse{Index: s.f.cluster.CommitIndex}, nil
}

func (s adminServer) RemoveMember(ctx context.Context, req *truegpuv1.RemoveMemberRequest) (*truegpuv1.RemoveMemberResponse, error) {
	if err := s.f.begin(ctx, "RemoveMember"); err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	i := slices.IndexFunc(s.f.cluster.Members, func(m *truegpuv1.Member) bool { return m.GetId() == req.GetId() })
	if i < 0 {
		return nil, status.Errorf(codes.NotFound, "member %q is not in the cluster", req.GetId())
	}
	s.f.cluster.Members = slices.Delete(s.f.cluster.Members, i, i+1)
	s.f.cluster.CommitIndex++
	return &truegpuv1.RemoveMemberResponse{Index: s.f.cluster.CommitIndex}, nil
}

// nodeServer leaves the node-facing API unimplemented: clients of this
// package read reputation; they do not attest.
type nodeServer struct {
	truegpuv1.UnimplementedNodeServiceServer
}
