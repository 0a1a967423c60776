package oracle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// ErrAuditFailed reports an epoch whose verdicts this member does not
// reproduce; it refuses to sign the report.
var ErrAuditFailed = errors.New("oracle: audit disagrees with the epoch's verdicts")

// auditLoop runs on every member: for each closed epoch this member has not
// signed, it re-verifies the proofs behind the epoch's verdicts (outside
// Apply) and signs the report only if it agrees.
func (m *Member) auditLoop(ctx context.Context) {
	notes, cancel := m.fsm.Subscribe(16)
	defer cancel()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	refused := map[uint64]bool{}
	passed := map[uint64]bool{} // audited and agreed; only the signature is pending
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notes:
		}
		meta, err := m.fsm.Meta()
		if err != nil {
			continue
		}
		for e := meta.CurrentEpoch - 1; e >= 1 && e+4 >= meta.CurrentEpoch; e-- {
			if refused[e] {
				continue
			}
			es, err := m.fsm.Epoch(e)
			if err != nil {
				continue
			}
			if !m.shouldSign(es) {
				// Signed already, or not asked to sign: nothing is owed.
				if m.hasSigned(es) || !slices.Contains(es.Report.GetSigners(), m.signer.String()) {
					m.metrics.noteSigned(e)
				}
				continue
			}
			if !passed[e] {
				start := time.Now()
				err := m.audit(es)
				m.metrics.auditSeconds.Observe(time.Since(start).Seconds())
				if err != nil {
					refused[e] = true
					m.metrics.audits.WithLabelValues("refused").Inc()
					m.log.Error("refusing to sign epoch report", "epoch", e, "err", err)
					continue
				}
				m.metrics.audits.WithLabelValues("passed").Inc()
				passed[e] = true
			}
			if err := m.signReport(ctx, es); err != nil {
				if ctx.Err() == nil {
					m.log.Debug("report signature not submitted yet", "epoch", e, "err", err)
				}
			} else {
				m.metrics.signaturesSent.Inc()
				m.metrics.noteSigned(e)
			}
		}
	}
}

func (m *Member) shouldSign(es *truegpuv1.EpochState) bool {
	me := m.signer.String()
	if !slices.Contains(es.Report.GetSigners(), me) {
		return false
	}
	for _, s := range es.Report.Signatures {
		if s.SignerAddress == me {
			return false
		}
	}
	return true
}

// hasSigned reports whether this member's signature is on the report.
func (m *Member) hasSigned(es *truegpuv1.EpochState) bool {
	me := m.signer.String()
	for _, s := range es.Report.GetSignatures() {
		if s.SignerAddress == me {
			return true
		}
	}
	return false
}

// audit re-derives what the report commits to and re-checks every proof
// behind the epoch's verdicts.
func (m *Member) audit(es *truegpuv1.EpochState) error {
	r := es.Report
	if err := m.auditMode(es); err != nil {
		return err
	}
	var entries []reputation.Entry
	for _, l := range es.Leaves {
		entries = append(entries, reputation.Entry{Address: ethcrypto.Address(l.Address), Score: l.ScoreBp, Status: reputation.Status(l.Status)})
	}
	tree, err := reputation.BuildTree(entries)
	if err != nil {
		return fmt.Errorf("%w: epoch %d leaves: %w", ErrAuditFailed, r.Epoch, err)
	}
	if root := tree.Root(); string(root[:]) != string(r.Root) {
		return fmt.Errorf("%w: epoch %d root does not match its leaves", ErrAuditFailed, r.Epoch)
	}
	digest := reputation.ReportDigest(m.fsm.Domain(), reportOf(r))
	if string(digest[:]) != string(r.Digest) {
		return fmt.Errorf("%w: epoch %d digest does not match the report", ErrAuditFailed, r.Epoch)
	}
	var proofs []*verifier.Proof
	var pubs []verifier.PublicInputs
	for _, id := range es.VerdictChallengeIds {
		cs, err := m.fsm.Challenge(id)
		if err != nil {
			return fmt.Errorf("%w: epoch %d: %w", ErrAuditFailed, r.Epoch, err)
		}
		v := cs.Verdict
		switch {
		case v == nil:
			// Expired without a proof: nothing to re-verify.
		case v.Accepted:
			if cs.Challenge.Timed != nil {
				if err := CheckTimed(cs, v.TimedOpenings); err != nil {
					return fmt.Errorf("%w: accepted verdict for %s: its timed phase does not check: %w", ErrAuditFailed, truegpuv1.FormatChallengeID(id), err)
				}
			}
			if cs.Challenge.Memory != nil {
				if err := CheckMemory(cs, v.WalkOpenings); err != nil {
					return fmt.Errorf("%w: accepted verdict for %s: its memory phase does not check: %w", ErrAuditFailed, truegpuv1.FormatChallengeID(id), err)
				}
			}
			p, err := verifier.DecodeProof(v.Proof)
			if err != nil {
				return fmt.Errorf("%w: accepted verdict for %s has a malformed proof", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
			pub, err := m.publicInputs(cs)
			if err != nil {
				return fmt.Errorf("%w: accepted verdict for %s: %w", ErrAuditFailed, truegpuv1.FormatChallengeID(id), err)
			}
			proofs, pubs = append(proofs, p), append(pubs, pub)
		case v.Reason == string(reputation.ReasonProofMalformed):
			if _, err := verifier.DecodeProof(v.Proof); err == nil {
				return fmt.Errorf("%w: %s was rejected as malformed but decodes", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonProofInvalid):
			p, err := verifier.DecodeProof(v.Proof)
			if err != nil {
				return fmt.Errorf("%w: %s was rejected as invalid but its proof does not decode (malformed)", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
			pub, err := m.publicInputs(cs)
			if err == nil && verifier.Verify(m.cfg.VerifyingKey, p, pub) == nil {
				return fmt.Errorf("%w: %s was rejected but its proof verifies", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonTimedInvalid):
			if cs.Challenge.Timed != nil && CheckTimed(cs, v.TimedOpenings) == nil {
				return fmt.Errorf("%w: %s was rejected for its timed phase, but its openings check", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonWalkInvalid):
			if cs.Challenge.Memory != nil && CheckMemory(cs, v.WalkOpenings) == nil {
				return fmt.Errorf("%w: %s was rejected for its memory phase, but its walk openings check", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonWalkLate):
			if v.WalkReceivedAtUnixMs <= fsm.WalkDeadline(cs) {
				return fmt.Errorf("%w: %s was rejected as a late walk without an arrival after its deadline", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonInputMismatch):
			if cs.Challenge.Profile == m.cfg.Profile.ID() {
				return fmt.Errorf("%w: %s was rejected for its profile, but %s is the profile this cluster verifies", ErrAuditFailed, truegpuv1.FormatChallengeID(id), cs.Challenge.Profile)
			}
		case v.Reason == string(reputation.ReasonCommitmentLate):
			if v.CommitReceivedAtUnixMs <= cs.Challenge.CommitDeadlineUnixMs {
				return fmt.Errorf("%w: %s was rejected as late without an arrival after its deadline", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		default:
			return fmt.Errorf("%w: %s was rejected for %q, which no verdict may carry", ErrAuditFailed, truegpuv1.FormatChallengeID(id), v.Reason)
		}
	}
	m.metrics.auditBatch.Observe(float64(len(proofs)))
	if len(proofs) > 0 {
		bad, err := verifier.VerifyBatch(m.cfg.VerifyingKey, proofs, pubs)
		if err != nil {
			return fmt.Errorf("%w: batch verification: %w", ErrAuditFailed, err)
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: %d accepted proofs of epoch %d do not verify", ErrAuditFailed, len(bad), r.Epoch)
		}
	}
	return nil
}

// auditMode checks the report's mode against this member's (Config.Shadow):
// a member signs only reports closed in the mode it is configured for, so a
// report completes only in a mode a majority of members stand for. A
// shadow report must publish every node with the neutral leaf.
func (m *Member) auditMode(es *truegpuv1.EpochState) error {
	r := es.Report
	mode := func(shadow bool) string {
		if shadow {
			return "shadow"
		}
		return "enforcing"
	}
	if r.Shadow != m.cfg.Shadow {
		return fmt.Errorf("%w: epoch %d was closed in %s mode; this member is configured for %s mode", ErrAuditFailed, r.Epoch, mode(r.Shadow), mode(m.cfg.Shadow))
	}
	if !r.Shadow {
		return nil
	}
	for _, l := range es.Leaves {
		if reputation.Status(l.Status) != fsm.ShadowStatus || l.ScoreBp != fsm.ShadowScoreBP {
			return fmt.Errorf("%w: epoch %d was closed in shadow mode but publishes %s with status %s and score %d", ErrAuditFailed, r.Epoch,
				ethcrypto.Address(l.Address), reputation.Status(l.Status), l.ScoreBp)
		}
	}
	return nil
}

// publicInputs are the Groth16 public inputs of a committed challenge, as
// both the pipeline and the auditor verify them: built from the replicated
// record alone (the issued nonce and address, the recorded root and the
// leader's sample seed), never from what a node sends with its proof.
func (m *Member) publicInputs(cs *truegpuv1.ChallengeState) (verifier.PublicInputs, error) {
	ch := cs.Challenge
	if ch.Profile != m.cfg.Profile.ID() || len(cs.Root) != 32 || len(cs.SampleSeed) != verifier.SampleSeedSize {
		return verifier.PublicInputs{}, fmt.Errorf("profile %s, root or sample seed not checkable here", ch.Profile)
	}
	return verifier.NewPublicInputs(m.cfg.VerifyingKey.Digest, [32]byte(ch.Nonce), [20]byte(ch.Address), [32]byte(cs.Root), [verifier.SampleSeedSize]byte(cs.SampleSeed))
}

func reportOf(r *truegpuv1.EpochReport) reputation.Report {
	return reputation.Report{ConfigDigest: [32]byte(r.ConfigDigest), Epoch: r.Epoch, Round: r.Round, Timestamp: r.Timestamp, Root: [32]byte(r.Root), Count: r.Count,
		ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt}
}

func (m *Member) signReport(ctx context.Context, es *truegpuv1.EpochState) error {
	sig, err := m.cfg.SignerKey.SignHash([32]byte(es.Report.Digest))
	if err != nil {
		return err
	}
	ms := &truegpuv1.MemberSignature{MemberId: m.cfg.ID, SignerAddress: m.signer.String(), Signature: sig[:]}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if m.IsLeader() {
		_, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_AddReportSignature{AddReportSignature: &truegpuv1.AddReportSignatureCommand{Epoch: es.Report.Epoch, Signature: ms}}})
		return err
	}
	conn, err := m.leaderConn()
	if err != nil {
		return err
	}
	_, err = truegpuv1.NewMemberServiceClient(conn).SubmitReportSignature(ctx, &truegpuv1.SubmitReportSignatureRequest{Epoch: es.Report.Epoch, Signature: ms})
	return err
}

// forwardedKey marks a request a member forwarded to the leader, so a stale
// view of the leader cannot bounce it around.
const forwardedKey = "x-truegpu-forwarded"

// conns caches gRPC client connections to other members.
type conns struct {
	mu   sync.Mutex
	byTo map[string]*grpc.ClientConn
	opts []grpc.DialOption
}

func (c *conns) get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.byTo[addr]; ok {
		return cc, nil
	}
	opts := c.opts
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	if c.byTo == nil {
		c.byTo = map[string]*grpc.ClientConn{}
	}
	c.byTo[addr] = cc
	return cc, nil
}

func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.byTo {
		cc.Close()
	}
	c.byTo = nil
}

// leaderConn returns a connection to the leader's gRPC server.
func (m *Member) leaderConn() (*grpc.ClientConn, error) {
	id, addr := m.LeaderInfo()
	if id == "" {
		return nil, ErrNoLeader
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: leader %s has not published its gRPC address yet", ErrNoLeader, id)
	}
	return m.peers.get(addr)
}

// refreshKey marks a JoinMember that only refreshes the metadata of a
// current member (a member keeping its own row current); it never adds a
// voter, so a removed member cannot rejoin by itself.
const refreshKey = "x-truegpu-refresh-only"

// ForwardContext marks an outgoing context as forwarded by a member,
// keeping the refresh-only mark of the incoming call.
func ForwardContext(ctx context.Context) context.Context {
	kv := []string{forwardedKey, "1"}
	if refreshOnly(ctx) {
		kv = append(kv, refreshKey, "1")
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func refreshOnly(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(refreshKey)) > 0
}

func wasForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

func (m *Member) forwardJoin(ctx context.Context, addr string, meta *truegpuv1.SetMemberCommand) error {
	cc, err := m.peers.get(addr)
	if err != nil {
		return err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, refreshKey, "1")
	_, err = truegpuv1.NewAdminServiceClient(cc).JoinMember(ctx, &truegpuv1.JoinMemberRequest{
		Id: meta.Id, RaftAddress: meta.RaftAddress, GrpcAddress: meta.GrpcAddress, HttpAddress: meta.HttpAddress,
		SignerAddress: ethcrypto.Address(meta.SignerAddress).String(), Seq: meta.Seq, Signature: meta.Signature,
	})
	return err
}
