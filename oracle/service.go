package oracle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// The gRPC services of a member. Writes are served by the leader; a
// follower forwards them (once) to the leader it knows. Reads say how they
// were served in ReadInfo: stale reads come from the local replica,
// linearizable ones from the leader after VerifyLeader and Barrier.

type nodeService struct {
	truegpuv1.UnimplementedNodeServiceServer
	m *Member
}

type reputationService struct {
	truegpuv1.UnimplementedReputationServiceServer
	m *Member
}

type feedService struct {
	truegpuv1.UnimplementedFeedServiceServer
	m *Member
}

type adminService struct {
	truegpuv1.UnimplementedAdminServiceServer
	m *Member
}

type memberService struct {
	truegpuv1.UnimplementedMemberServiceServer
	m *Member
}

// forward runs call on the leader when this member is not the leader.
// It returns handled=false when this member should serve the call itself.
func forward[Req, Resp any](ctx context.Context, m *Member, req Req, call func(*memberClients, context.Context, Req) (Resp, error)) (resp Resp, handled bool, err error) {
	if m.IsLeader() {
		return resp, false, nil
	}
	if wasForwarded(ctx) {
		return resp, true, m.notLeaderError()
	}
	cc, err := m.leaderConn()
	if err != nil {
		return resp, true, err
	}
	resp, err = call(newMemberClients(cc), ForwardContext(ctx), req)
	return resp, true, err
}

func (s *nodeService) RegisterNode(ctx context.Context, req *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).registerNode); ok {
		return r, err
	}
	return s.m.pipeline.Register(ctx, req)
}

func (s *nodeService) SubmitCommitment(ctx context.Context, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitCommitment); ok {
		return r, err
	}
	return s.m.pipeline.Commit(ctx, req)
}

func (s *nodeService) SubmitWalk(ctx context.Context, req *truegpuv1.SubmitWalkRequest) (*truegpuv1.SubmitWalkResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitWalk); ok {
		return r, err
	}
	return s.m.pipeline.Walk(ctx, req)
}

func (s *nodeService) SubmitProof(ctx context.Context, req *truegpuv1.SubmitProofRequest) (*truegpuv1.SubmitProofResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitProof); ok {
		return r, err
	}
	start := time.Now()
	resp, err := s.m.pipeline.Proof(ctx, req)
	if err == nil {
		s.m.metrics.proofSeconds.Observe(time.Since(start).Seconds())
	}
	return resp, err
}

// checkAccess verifies a signed challenge-access request.
func (m *Member) checkAccess(req interface {
	GetAddress() string
	GetSignature() []byte
	GetTimestampUnixMs() int64
	GetCluster() string
}, msg proto.Message) (ethcrypto.Address, error) {
	if err := m.checkCluster(req.GetCluster()); err != nil {
		return ethcrypto.Address{}, err
	}
	addr, err := checkSigned(m.recovered.Recover, req, msg)
	if err != nil {
		return addr, err
	}
	skew := m.cfg.Now().Sub(time.UnixMilli(req.GetTimestampUnixMs()))
	if skew > m.cfg.Pipeline.MaxClockSkew || -skew > m.cfg.Pipeline.MaxClockSkew {
		return addr, fmt.Errorf("%w: %v off; check the node's clock", ErrClockSkew, skew.Round(time.Second))
	}
	if _, err := m.fsm.Node(addr); errors.Is(err, fsm.ErrNotFound) {
		return addr, fmt.Errorf("%w: %s", ErrUnknownNode, addr)
	} else if err != nil {
		return addr, err
	}
	if err := m.checkReplay(msg, req.GetTimestampUnixMs()); err != nil {
		return addr, err
	}
	return addr, nil
}

// challengeView is the API form of an issued challenge.
func (m *Member) challengeView(ch *truegpuv1.IssuedChallenge, rec *truegpuv1.NodeRecord) *truegpuv1.Challenge {
	p := m.cfg.Profile
	digest := p.Digest()
	c := &truegpuv1.Challenge{
		ChallengeId: truegpuv1.FormatChallengeID(ch.Id), Address: ethcrypto.Address(ch.Address).String(), DeviceIndex: ch.DeviceIndex,
		Nonce: ch.Nonce, IssuedAtUnixMs: ch.IssuedAtUnixMs, CommitDeadlineUnixMs: ch.CommitDeadlineUnixMs,
		ProofDeadlineUnixMs: ch.ProofDeadlineUnixMs, StormId: ch.StormId,
		Params: &truegpuv1.WorkloadParams{Profile: ch.Profile, M: uint32(p.M), N: uint32(p.N), K: uint32(p.K), Samples: uint32(p.Q), ParamsDigest: digest[:]},
		Timed:  ch.Timed, Memory: ch.Memory,
	}
	if rec != nil && int(ch.DeviceIndex) < len(rec.Devices) {
		c.DeviceUuid = rec.Devices[ch.DeviceIndex].GetFingerprint().GetUuid()
	}
	return c
}

func (m *Member) openChallenges(addr ethcrypto.Address) ([]*truegpuv1.Challenge, error) {
	rec, err := m.fsm.Node(addr)
	if err != nil {
		return nil, err
	}
	css, err := m.fsm.OpenChallenges(addr)
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now().UnixMilli()
	var out []*truegpuv1.Challenge
	for _, cs := range css {
		switch {
		case cs.Outcome == fsm.OutcomePending && cs.Challenge.CommitDeadlineUnixMs >= now:
			out = append(out, m.challengeView(cs.Challenge, rec))
		case cs.Outcome == fsm.OutcomeCommitted && cs.Challenge.ProofDeadlineUnixMs >= now:
			// Proof still due: the node may have lost the commitment's
			// answer, so the view carries the root and sample seed.
			c := m.challengeView(cs.Challenge, rec)
			c.Root, c.SampleSeed, c.TimedRoot = cs.Root, cs.SampleSeed, cs.TimedRoot
			c.TableRoot, c.WalkRoot, c.CheckSeed, c.WalkDeadlineUnixMs = cs.TableRoot, cs.WalkRoot, cs.CheckSeed, fsm.WalkDeadline(cs)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IssuedAtUnixMs < out[j].IssuedAtUnixMs })
	return out, nil
}

func (s *nodeService) PollChallenges(ctx context.Context, req *truegpuv1.PollChallengesRequest) (*truegpuv1.PollChallengesResponse, error) {
	addr, err := s.m.checkAccess(req, req)
	if err != nil {
		return nil, err
	}
	chs, err := s.m.openChallenges(addr)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.PollChallengesResponse{Challenges: chs}, nil
}

// StreamChallenges is served from the local replica: it sends the node's
// open challenges, then each new one as this member applies it.
func (s *nodeService) StreamChallenges(req *truegpuv1.StreamChallengesRequest, stream truegpuv1.NodeService_StreamChallengesServer) error {
	addr, err := s.m.checkAccess(req, req)
	if err != nil {
		return err
	}
	notes, cancel := s.m.fsm.Subscribe(256)
	defer cancel()
	chs, err := s.m.openChallenges(addr)
	if err != nil {
		return err
	}
	sent := map[string]bool{}
	for _, c := range chs {
		sent[c.ChallengeId] = true
		if err := stream.Send(&truegpuv1.StreamChallengesResponse{Challenge: c}); err != nil {
			return err
		}
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.m.ctx.Done():
			return ErrClosed
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			var rec *truegpuv1.NodeRecord
			for _, ch := range n.Issued {
				if string(ch.Address) != string(addr[:]) || sent[truegpuv1.FormatChallengeID(ch.Id)] {
					continue
				}
				if rec == nil {
					if rec, err = s.m.fsm.Node(addr); err != nil {
						return err
					}
				}
				c := s.m.challengeView(ch, rec)
				sent[c.ChallengeId] = true
				if err := stream.Send(&truegpuv1.StreamChallengesResponse{Challenge: c}); err != nil {
					return err
				}
			}
		}
	}
}

// read prepares a read at the requested consistency and describes it in
// the ReadInfo it returns. A linearizable read runs Member.Barrier
// (VerifyLeader, then Raft's Barrier), which fails with ErrNotLeader on a
// follower: the handlers call forward for a linearizable request first, so
// a follower hands it to the leader (or, for a call that arrived already
// forwarded, answers not-leader) and calls read itself only for stale
// reads.
func (m *Member) read(ctx context.Context, c truegpuv1.ReadConsistency) (*truegpuv1.ReadInfo, error) {
	if c == truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE {
		if err := m.Barrier(ctx); err != nil {
			return nil, err
		}
	}
	return &truegpuv1.ReadInfo{ServedBy: m.cfg.ID, Linearizable: c == truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, AppliedIndex: m.fsm.AppliedIndex()}, nil
}

func linearizable(c truegpuv1.ReadConsistency) bool {
	return c == truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
}

func parseAddress(s string) (ethcrypto.Address, error) {
	a, err := ethcrypto.ParseAddress(s)
	if err != nil {
		return a, fmt.Errorf("%w: address %q: %w", ErrInvalidRequest, s, err)
	}
	return a, nil
}

// recentChallenges is how many challenges a node view lists.
const recentChallenges = 16

// NodeView builds the API view of a node: its record plus its recent
// challenges and the issued count from the challenge index. Device
// identifiers are shown as digests (redact.go).
func (m *Member) NodeView(rec *truegpuv1.NodeRecord) (*truegpuv1.NodeReputation, error) {
	recent, open, err := m.fsm.ChallengeHistory(ethcrypto.Address(rec.Address), recentChallenges)
	if err != nil {
		return nil, err
	}
	counters := &truegpuv1.NodeCounters{}
	if rec.Counters != nil {
		counters.Accepted, counters.Rejected, counters.Missed = rec.Counters.Accepted, rec.Counters.Rejected, rec.Counters.Missed
	}
	counters.Issued = counters.Accepted + counters.Rejected + counters.Missed + open
	devices, ids := m.publicDevices(rec.Devices)
	meta, err := m.fsm.Meta()
	if err != nil {
		return nil, err
	}
	// In shadow mode the status and score are shown but not enforced:
	// reports publish the neutral leaf instead.
	pubScore, pubStatus := fsm.Published(reputation.Status(rec.Status), rec.ScoreBp, meta.Shadow)
	return &truegpuv1.NodeReputation{
		Address: ethcrypto.Address(rec.Address).String(), Status: rec.Status, ScoreBp: rec.ScoreBp, Dimensions: rec.Dimensions,
		Reasons: publicReasons(rec.Reasons, ids), Devices: devices, Counters: counters, RecentChallenges: recent,
		RegisteredAtUnixMs: rec.RegisteredAtUnixMs, UpdatedAtUnixMs: rec.UpdatedAtUnixMs,
		Shadow: meta.Shadow, PublishedStatus: truegpuv1.NodeStatus(pubStatus), PublishedScoreBp: pubScore,
	}, nil
}

func (s *reputationService) GetNode(ctx context.Context, req *truegpuv1.GetNodeRequest) (*truegpuv1.GetNodeResponse, error) {
	addr, err := parseAddress(req.Address)
	if err != nil {
		return nil, err
	}
	if linearizable(req.Consistency) {
		if r, ok, err := forward(ctx, s.m, req, (*memberClients).getNode); ok {
			return r, err
		}
	}
	info, err := s.m.read(ctx, req.Consistency)
	if err != nil {
		return nil, err
	}
	rec, err := s.m.fsm.Node(addr)
	if err != nil {
		return nil, err
	}
	view, err := s.m.NodeView(rec)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.GetNodeResponse{Node: view, Read: info}, nil
}

func summary(rec *truegpuv1.NodeRecord) *truegpuv1.NodeSummary {
	var classes []string
	for _, d := range rec.Devices {
		classes = append(classes, d.ClaimedClass)
	}
	slices.Sort(classes)
	classes = slices.Compact(classes)
	top := ""
	if len(rec.Reasons) > 0 {
		top = rec.Reasons[0].Code
	}
	return &truegpuv1.NodeSummary{Address: ethcrypto.Address(rec.Address).String(), Status: rec.Status, ScoreBp: rec.ScoreBp,
		Dimensions: rec.Dimensions, Classes: classes, DeviceCount: uint32(len(rec.Devices)), TopReason: top, UpdatedAtUnixMs: rec.UpdatedAtUnixMs}
}

func (s *reputationService) WatchScores(req *truegpuv1.WatchScoresRequest, stream truegpuv1.ReputationService_WatchScoresServer) error {
	want := map[string]bool{}
	for _, a := range req.Addresses {
		addr, err := parseAddress(a)
		if err != nil {
			return err
		}
		want[addr.String()] = true
	}
	notes, cancel := s.m.fsm.Subscribe(1024)
	defer cancel()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.m.ctx.Done():
			return ErrClosed
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			for _, c := range n.ScoreChanges {
				if len(want) > 0 && !want[c.Address] {
					continue
				}
				if err := stream.Send(&truegpuv1.WatchScoresResponse{Change: c}); err != nil {
					return err
				}
			}
		}
	}
}

func (s *feedService) GetLatestReport(ctx context.Context, req *truegpuv1.GetLatestReportRequest) (*truegpuv1.GetLatestReportResponse, error) {
	info, err := s.m.read(ctx, truegpuv1.ReadConsistency_READ_CONSISTENCY_STALE)
	if err != nil {
		return nil, err
	}
	es, err := s.m.fsm.LatestEpoch(!req.IncludeIncomplete)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.GetLatestReportResponse{Report: es.Report, Read: info}, nil
}

func (s *feedService) GetReport(ctx context.Context, req *truegpuv1.GetReportRequest) (*truegpuv1.GetReportResponse, error) {
	info, err := s.m.read(ctx, truegpuv1.ReadConsistency_READ_CONSISTENCY_STALE)
	if err != nil {
		return nil, err
	}
	es, err := s.m.fsm.Epoch(req.Epoch)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.GetReportResponse{Report: es.Report, Read: info}, nil
}

func (s *feedService) GetNodeProof(ctx context.Context, req *truegpuv1.GetNodeProofRequest) (*truegpuv1.GetNodeProofResponse, error) {
	addr, err := parseAddress(req.Address)
	if err != nil {
		return nil, err
	}
	es, err := s.m.fsm.Epoch(req.Epoch)
	if err != nil {
		return nil, err
	}
	var entries []reputation.Entry
	var mine *reputation.Entry
	for _, l := range es.Leaves {
		e := reputation.Entry{Address: ethcrypto.Address(l.Address), Score: l.ScoreBp, Status: reputation.Status(l.Status)}
		entries = append(entries, e)
		if e.Address == addr {
			mine = &e
		}
	}
	if mine == nil {
		return nil, fmt.Errorf("%w: node %s has no leaf in epoch %d", fsm.ErrNotFound, addr, req.Epoch)
	}
	tree, err := reputation.BuildTree(entries)
	if err != nil {
		return nil, err
	}
	proof, err := tree.Proof(addr)
	if err != nil {
		return nil, err
	}
	leaf := reputation.LeafHash(*mine)
	root := tree.Root()
	resp := &truegpuv1.GetNodeProofResponse{Epoch: req.Epoch, Address: addr.String(), ScoreBp: mine.Score,
		Status: truegpuv1.NodeStatus(mine.Status), Leaf: leaf[:], Root: root[:]}
	for _, p := range proof {
		resp.Proof = append(resp.Proof, p[:])
	}
	return resp, nil
}

func (s *adminService) GetCluster(ctx context.Context, req *truegpuv1.GetClusterRequest) (*truegpuv1.GetClusterResponse, error) {
	m := s.m
	cf := m.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, mapRaftError(err)
	}
	table, err := m.fsm.Members()
	if err != nil {
		return nil, err
	}
	meta, err := m.fsm.Meta()
	if err != nil {
		return nil, err
	}
	byID := map[string]*truegpuv1.SetMemberCommand{}
	for _, t := range table {
		byID[t.Id] = t
	}
	leaderID, _ := m.LeaderInfo()
	resp := &truegpuv1.GetClusterResponse{LeaderId: leaderID, AppliedIndex: m.fsm.AppliedIndex(), CommitIndex: m.raft.CommitIndex(),
		CurrentEpoch: meta.CurrentEpoch, LastCompleteEpoch: meta.LastCompleteEpoch, ServedBy: m.cfg.ID, NodeCount: meta.NodeCount,
		ClusterId: m.cfg.ClusterID, Shadow: meta.Shadow}
	if t, err := strconv.ParseUint(m.raft.Stats()["term"], 10, 64); err == nil {
		resp.Term = t
	}
	signers := 0
	for _, srv := range cf.Configuration().Servers {
		mem := &truegpuv1.Member{Id: string(srv.ID), RaftAddress: string(srv.Address), Suffrage: suffrage(srv.Suffrage), Leader: string(srv.ID) == leaderID}
		if t := byID[mem.Id]; t != nil {
			mem.GrpcAddress, mem.HttpAddress = t.GrpcAddress, t.HttpAddress
			if len(t.SignerAddress) == 20 {
				mem.SignerAddress = ethcrypto.Address(t.SignerAddress).String()
				signers++
			}
		}
		resp.Members = append(resp.Members, mem)
	}
	sort.Slice(resp.Members, func(i, j int) bool { return resp.Members[i].Id < resp.Members[j].Id })
	if signers > 0 {
		resp.ReportThreshold = uint32(fsm.Threshold(signers))
	}
	return resp, nil
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	default:
		return "staging"
	}
}

func (s *adminService) JoinMember(ctx context.Context, req *truegpuv1.JoinMemberRequest) (*truegpuv1.JoinMemberResponse, error) {
	if err := s.m.authorize(ctx, "JoinMember", req.Id, true); err != nil {
		return nil, err
	}
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).joinMember); ok {
		return r, err
	}
	if req.Id == "" || req.RaftAddress == "" {
		return nil, fmt.Errorf("%w: id and raft_address are required", ErrInvalidRequest)
	}
	meta := &truegpuv1.SetMemberCommand{Id: req.Id, RaftAddress: req.RaftAddress, GrpcAddress: req.GrpcAddress, HttpAddress: req.HttpAddress,
		Seq: req.Seq, Signature: req.Signature}
	if req.SignerAddress != "" {
		a, err := parseAddress(req.SignerAddress)
		if err != nil {
			return nil, err
		}
		meta.SignerAddress = a[:]
	}
	idx, err := s.m.join(ctx, meta, refreshOnly(ctx))
	if err != nil {
		return nil, err
	}
	return &truegpuv1.JoinMemberResponse{Index: idx}, nil
}

func (s *adminService) RemoveMember(ctx context.Context, req *truegpuv1.RemoveMemberRequest) (*truegpuv1.RemoveMemberResponse, error) {
	if err := s.m.authorize(ctx, "RemoveMember", req.Id, true); err != nil {
		return nil, err
	}
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).removeMember); ok {
		return r, err
	}
	if req.Id == "" {
		return nil, fmt.Errorf("%w: id is required", ErrInvalidRequest)
	}
	idx, err := s.m.Remove(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.RemoveMemberResponse{Index: idx}, nil
}

// Health reports the member's health.
func (m *Member) Health() *truegpuv1.GetHealthResponse {
	leaderID, _ := m.LeaderInfo()
	resp := &truegpuv1.GetHealthResponse{RaftState: lowerState(m.raft.State()), AppliedIndex: m.fsm.AppliedIndex(), LeaderId: leaderID}
	if leaderID == "" {
		resp.Problems = append(resp.Problems, "no leader")
	}
	if lag := m.raft.CommitIndex() - min(m.raft.CommitIndex(), m.fsm.AppliedIndex()); lag > 10000 {
		resp.Problems = append(resp.Problems, fmt.Sprintf("applying lags the commit index by %d entries", lag))
	}
	resp.Status = "serving"
	if len(resp.Problems) > 0 {
		resp.Status = "degraded"
	}
	return resp
}

func lowerState(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	default:
		return "shutdown"
	}
}

func (s *adminService) GetHealth(ctx context.Context, req *truegpuv1.GetHealthRequest) (*truegpuv1.GetHealthResponse, error) {
	return s.m.Health(), nil
}

// SubmitReportSignature is served by the leader; the state machine checks
// that the signature recovers to a signer of the report.
//
// The caller must be the member named in the signature, and the signature's
// signer that member's signer in the member table.
func (s *memberService) SubmitReportSignature(ctx context.Context, req *truegpuv1.SubmitReportSignatureRequest) (*truegpuv1.SubmitReportSignatureResponse, error) {
	if err := s.m.authorize(ctx, "SubmitReportSignature", req.GetSignature().GetMemberId(), false); err != nil {
		return nil, err
	}
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitReportSignature); ok {
		return r, err
	}
	if req.Signature == nil {
		return nil, fmt.Errorf("%w: signature is required", ErrInvalidRequest)
	}
	if err := s.m.checkSignerOf(req.Signature); err != nil {
		return nil, err
	}
	idx, err := s.m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_AddReportSignature{AddReportSignature: &truegpuv1.AddReportSignatureCommand{Epoch: req.Epoch, Signature: req.Signature}}})
	if err != nil {
		return nil, err
	}
	return &truegpuv1.SubmitReportSignatureResponse{AppliedIndex: idx}, nil
}

// checkSignerOf requires that a report signature names a member whose row
// holds the signature's signer.
func (m *Member) checkSignerOf(sig *truegpuv1.MemberSignature) error {
	signer, err := ethcrypto.ParseAddress(sig.SignerAddress)
	if err != nil {
		return fmt.Errorf("%w: signer address: %w", ErrInvalidRequest, err)
	}
	members, err := m.fsm.Members()
	if err != nil {
		return err
	}
	for _, mem := range members {
		if mem.Id == sig.MemberId {
			if len(mem.SignerAddress) == 20 && ethcrypto.Address(mem.SignerAddress) == signer {
				return nil
			}
			break
		}
	}
	return fmt.Errorf("%w: %s is not the signer of member %q", ErrInvalidRequest, signer, sig.MemberId)
}
