package oracle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/testwait"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// answerOn registers a node backed by dev with the cluster's leader (over
// gRPC) and has the production attestor answer n challenges issued to it,
// one after another; a leadership change on the way (short election
// timeouts on a loaded machine) starts again on the new leader.
func answerOn(t *testing.T, c *cluster, dev attest.Device, key *attest.NodeKey, n int) {
	t.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		m := c.leader(10 * time.Second)
		err := func() error {
			a, rec := registeredAgent(t, m, dialMember(t, m), dev, key)
			s := newScheduler(m)
			for range n {
				ch, err := s.challenge(key.Address(), rec.Devices[0], m.cfg.Now(), "")
				if err != nil {
					return err
				}
				if _, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{
					IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}}); err != nil {
					return err
				}
				if _, err := a.Handle(ctx, m.challengeView(ch, rec)); err != nil {
					return fmt.Errorf("answering %s: %w", truegpuv1.FormatChallengeID(ch.Id), err)
				}
			}
			return nil
		}()
		if err == nil {
			return
		}
		if attempt == 3 || !strings.Contains(err.Error(), "leader") && !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatal(err)
		}
		t.Logf("leadership changed while answering (%v); again on the new leader", err)
	}
}

// closeAndSign has the leader close the open epoch (switching the
// cluster's mode to its own first, as its epoch closer does) and waits
// until every member signed the report.
func closeAndSign(t *testing.T, c *cluster) *truegpuv1.EpochState {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	l := c.leader(10 * time.Second)
	meta, err := l.fsm.Meta()
	if err != nil {
		t.Fatal(err)
	}
	epoch := meta.CurrentEpoch
	for {
		err := l.maybeCloseEpoch(context.Background(), time.Time{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("closing epoch %d: %v", epoch, err)
		}
		l = c.leader(10 * time.Second)
	}
	es := testwait.For(t, time.Until(deadline), func() (*truegpuv1.EpochState, bool) {
		es, err := l.fsm.Epoch(epoch)
		return es, err == nil && len(es.Report.Signatures) == len(c.members) && es.Report.Complete
	}, "epoch %d: report not signed by every member", epoch)
	checkSignatures(t, l, es)
	return es
}

// TestShadowModeThroughTheCluster runs a three-member cluster in shadow
// mode: a node answering garbage is rejected by the pipeline and shown
// rejected by the API, but the signed report publishes it (like every
// node) as probation with score 10000 and keeps what enforcement would
// have published. A rolling restart of the members without shadow mode
// switches the cluster at the next epoch: that report publishes the node
// rejected with score 0. Replicas agree throughout; a member signs only
// reports of its own mode.
func TestShadowModeThroughTheCluster(t *testing.T) {
	shadow := true
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 100000, 100000
		cfg.EpochInterval = time.Millisecond
		cfg.Shadow = shadow
	})
	device := func(profile string) attest.Device {
		d, err := sim.New(profile, sim.Options{Seed: []byte(profile)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	honest, garbage := attest.NodeKeyFromSeed([]byte("shadow honest")), attest.NodeKeyFromSeed([]byte("shadow garbage"))
	answerOn(t, c, device("h100"), honest, 2)
	answerOn(t, c, device("garbage-h100"), garbage, 1)
	l := c.leader(10 * time.Second)
	rec, err := l.fsm.Node(garbage.Address())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != truegpuv1.NodeStatus_NODE_STATUS_REJECTED || rec.ScoreBp != 0 || len(rec.Reasons) == 0 {
		t.Fatalf("garbage node: status %s, score %d, reasons %v; want rejected with 0 and reasons", rec.Status, rec.ScoreBp, rec.Reasons)
	}

	es := closeAndSign(t, c)
	c.converge(20 * time.Second)
	r := es.Report
	if !r.Shadow || len(r.EnforcedRoot) != 32 || r.EnforcedByStatus["rejected"] != 1 || r.EnforcedByStatus["probation"] != 1 {
		t.Fatalf("shadow report: shadow=%v enforced root %x enforced counts %v", r.Shadow, r.EnforcedRoot, r.EnforcedByStatus)
	}
	ctx := context.Background()
	cc := dialMember(t, c.members[0])
	feed := truegpuv1.NewFeedServiceClient(cc)
	reps := truegpuv1.NewReputationServiceClient(cc)
	admin := truegpuv1.NewAdminServiceClient(cc)
	// The feed publishes the node neutral, with a proof against the
	// signed root.
	latest, err := feed.GetLatestReport(ctx, &truegpuv1.GetLatestReportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(latest.Report, r) {
		t.Fatalf("latest report %v, want %v", latest.Report, r)
	}
	checkLeaf(t, feed, r, garbage.Address(), fsm.ShadowStatus, fsm.ShadowScoreBP)
	checkLeaf(t, feed, r, honest.Address(), fsm.ShadowStatus, fsm.ShadowScoreBP)
	// The API shows the verdict, marked as not enforced.
	node, err := reps.GetNode(ctx, &truegpuv1.GetNodeRequest{Address: garbage.Address().String()})
	if err != nil {
		t.Fatal(err)
	}
	if v := node.Node; v.Status != truegpuv1.NodeStatus_NODE_STATUS_REJECTED || !v.Shadow ||
		v.PublishedStatus != truegpuv1.NodeStatus_NODE_STATUS_PROBATION || v.PublishedScoreBp != fsm.ShadowScoreBP || len(v.Reasons) == 0 {
		t.Fatalf("shadow node view: status %s shadow %v published %s %d reasons %v", v.Status, v.Shadow, v.PublishedStatus, v.PublishedScoreBp, v.Reasons)
	}
	if cl, err := admin.GetCluster(ctx, &truegpuv1.GetClusterRequest{}); err != nil || !cl.Shadow {
		t.Fatalf("GetCluster in shadow mode: %v %v", cl, err)
	}
	// A member signs only reports of its mode, and a shadow report only
	// with neutral leaves.
	tampered := proto.Clone(es).(*truegpuv1.EpochState)
	tampered.Leaves[0].Status = truegpuv1.NodeStatus_NODE_STATUS_REJECTED
	if err := l.audit(tampered); !errors.Is(err, ErrAuditFailed) || !strings.Contains(err.Error(), "shadow mode but publishes") {
		t.Fatalf("audit of a shadow report with a rejected leaf: %v", err)
	}

	// Switch to enforcing: restart every member without shadow mode, one
	// after another.
	shadow = false
	for i := range c.members {
		c.stop(i)
		c.restart(i)
		c.converge(20 * time.Second)
	}
	if err := c.members[0].audit(es); !errors.Is(err, ErrAuditFailed) || !strings.Contains(err.Error(), "configured for enforcing mode") {
		t.Fatalf("an enforcing member's audit of a shadow report: %v", err)
	}
	es2 := closeAndSign(t, c)
	c.converge(20 * time.Second)
	r2 := es2.Report
	if r2.Epoch != r.Epoch+1 || r2.Shadow || len(r2.EnforcedRoot) != 0 || r2.EnforcedByStatus["rejected"] != 1 {
		t.Fatalf("enforcing report after the switch: epoch %d shadow=%v enforced root %x counts %v", r2.Epoch, r2.Shadow, r2.EnforcedRoot, r2.EnforcedByStatus)
	}
	meta, err := c.members[0].fsm.Meta()
	if err != nil {
		t.Fatal(err)
	}
	if meta.Shadow || meta.ShadowChangedIndex == 0 || meta.ShadowChangedIndex >= r2.Round || meta.ShadowChangedIndex <= r.Round {
		t.Fatalf("meta after the switch: %v (shadow report closed at %d, enforcing at %d)", meta, r.Round, r2.Round)
	}
	cc = dialMember(t, c.members[0])
	feed = truegpuv1.NewFeedServiceClient(cc)
	reps = truegpuv1.NewReputationServiceClient(cc)
	checkLeaf(t, feed, r2, garbage.Address(), reputation.StatusRejected, 0)
	checkLeaf(t, feed, r, garbage.Address(), fsm.ShadowStatus, fsm.ShadowScoreBP) // the shadow epoch keeps its leaves
	node, err = reps.GetNode(ctx, &truegpuv1.GetNodeRequest{Address: garbage.Address().String()})
	if err != nil {
		t.Fatal(err)
	}
	if v := node.Node; v.Status != truegpuv1.NodeStatus_NODE_STATUS_REJECTED || v.Shadow ||
		v.PublishedStatus != truegpuv1.NodeStatus_NODE_STATUS_REJECTED || v.PublishedScoreBp != 0 {
		t.Fatalf("enforcing node view: status %s shadow %v published %s %d", v.Status, v.Shadow, v.PublishedStatus, v.PublishedScoreBp)
	}
}

// checkLeaf checks the node's leaf in the report's epoch, as the feed API
// serves it, and its proof against the report's root.
func checkLeaf(t *testing.T, feed truegpuv1.FeedServiceClient, r *truegpuv1.EpochReport, addr ethcrypto.Address, status reputation.Status, score uint32) {
	t.Helper()
	p, err := feed.GetNodeProof(context.Background(), &truegpuv1.GetNodeProofRequest{Epoch: r.Epoch, Address: addr.String()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != truegpuv1.NodeStatus(status) || p.ScoreBp != score || string(p.Root) != string(r.Root) {
		t.Fatalf("epoch %d (shadow=%v) publishes %s as %s %d; want %s %d", r.Epoch, r.Shadow, addr, p.Status, p.ScoreBp, status, score)
	}
	var proof [][32]byte
	for _, h := range p.Proof {
		proof = append(proof, [32]byte(h))
	}
	if !reputation.VerifyProof([32]byte(r.Root), reputation.Entry{Address: addr, Score: score, Status: status}, proof) {
		t.Fatalf("epoch %d: the proof of %s does not verify against the signed root", r.Epoch, addr)
	}
}
