package oracle

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

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

// verdictView builds the API view of a challenge's verdict.
func (p *pipeline) verdictView(id []byte, idx uint64) (*truegpuv1.Verdict, error) {
	cs, err := p.state.Challenge(id)
	if err != nil {
		return nil, err
	}
	ch := cs.Challenge
	v := &truegpuv1.Verdict{ChallengeId: truegpuv1.FormatChallengeID(id), Address: ethcrypto.Address(ch.Address).String(),
		CommitLatencyMs: latencyMs(ch.IssuedAtUnixMs, cs.ReceivedAtUnixMs), ExpectedLatencyMs: ch.ExpectedLatencyMs, AppliedIndex: idx}
	v.WalkLatencyMs, v.WalkExpectedLatencyMs = fsm.WalkLatency(cs)
	if cs.Verdict != nil {
		v.Accepted, v.Reason, v.Detail, v.DecidedAtUnixMs = cs.Verdict.Accepted, cs.Verdict.Reason, cs.Verdict.Detail, cs.Verdict.DecidedAtUnixMs
		v.AppliedIndex = cs.VerdictIndex
	}
	return v, nil
}

func latencyMs(from, to int64) uint64 {
	if to <= from {
		return 0
	}
	return uint64(to - from)
}

// read prepares a read at the requested consistency and describes it in
// the ReadInfo it returns. A linearizable read runs Member.Barrier
// (VerifyLeader, then Raft's Barrier), which fails with ErrNotLeader on a
// follower: the handlers call forward for a linearizable request first, so
// a follower hands it to the leader (or, for a call that arrived already
// forwarded, answers not-leader) and calls read itself only for stale
// reads.
func (m *Member) read(ctx context.Context, c truegpuv1.ReadConsistency) (*truegpuv1.ReadInfo, error) {
	if linearizable(c) {
		if err := m.Barrier(ctx); err != nil {
			return nil, err
		}
	}
	return &truegpuv1.ReadInfo{ServedBy: m.cfg.ID, Linearizable: c == truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, AppliedIndex: m.fsm.AppliedIndex()}, nil
}

// linearizable reports whether a read at c must be linearizable: handed
// to the leader, which confirms its leadership and applies every committed
// entry first.
func linearizable(c truegpuv1.ReadConsistency) bool {
	return c == truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE && !plantedStaleReads
}

func parseAddress(s string) (ethcrypto.Address, error) {
	a, err := ethcrypto.ParseAddress(s)
	if err != nil {
		return a, fmt.Errorf("%w: address %q: %w", ErrInvalidRequest, s, err)
	}
	return a, nil
}
