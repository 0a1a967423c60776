package oracle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/testwait"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// acked is a verdict the cluster acknowledged to a client.
type acked struct {
	id     []byte
	reason string
}

// TestClusterFaults runs a 3-member cluster through leader loss and
// re-election, a member restarted from disk (catching up by snapshot), a
// partitioned follower and a partitioned leader. No acknowledged verdict
// may be lost and all members must converge to one state hash.
func TestClusterFaults(t *testing.T) {
	p, _, _ := testKeys(t)
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	var nodes []*testNode
	for i := range 4 {
		nodes = append(nodes, newTestNode(10+i))
	}
	var acks []acked
	// submit answers one fresh challenge per node with a malformed proof
	// through the leader's pipeline and records the acknowledged verdicts.
	// A leadership change in the middle of a round (the election timeouts
	// are short, so a loaded machine can cause one) ends the round: what was
	// not acknowledged is not required, and the next round goes to the
	// leader of the moment.
	lostLeadership := func(err error) bool {
		return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrOutcomeUnknown)
	}
	submit := func(m *Member) {
		t.Helper()
		for _, n := range nodes {
			if _, err := m.pipeline.Register(ctx, n.registerReq(m.cfg.Now())); lostLeadership(err) {
				t.Logf("register: %v; the round ends", err)
				return
			} else if err != nil {
				t.Fatalf("register: %v", err)
			}
			ch, err := tryIssue(m, n)
			if lostLeadership(err) {
				t.Logf("issue: %v; the round ends", err)
				return
			} else if err != nil {
				t.Fatalf("issue: %v", err)
			}
			if r, err := m.pipeline.Commit(ctx, n.commitReq(ch, work(t, p, ch).Root())); lostLeadership(err) {
				t.Logf("commit: %v; the round ends", err)
				return
			} else if err != nil || !r.Accepted {
				t.Fatalf("commit: %v %v", r, err)
			}
			r, err := m.pipeline.Proof(ctx, n.proofReq(ch, bytes.Repeat([]byte{0xfe}, 128)))
			if lostLeadership(err) {
				t.Logf("proof: %v; the round ends", err)
				return
			} else if err != nil {
				t.Fatalf("proof: %v", err)
			}
			acks = append(acks, acked{ch.Id, r.Verdict.Reason})
		}
	}
	check := func() {
		t.Helper()
		c.converge(20 * time.Second)
		for _, m := range c.members {
			if m == nil {
				continue
			}
			for _, a := range acks {
				cs, err := m.fsm.Challenge(a.id)
				if err != nil || cs.Outcome != fsm.OutcomeRejected || cs.Verdict.Reason != a.reason {
					t.Fatalf("%s lost acknowledged verdict %x: %v %v", m.ID(), a.id, cs, err)
				}
			}
		}
	}

	l := c.leader(10 * time.Second)
	submit(l)
	check()

	// Leader loss and re-election.
	old := indexOf(c, l)
	c.stop(old)
	l2 := c.leader(10 * time.Second)
	submit(l2)
	// Push the log past the trailing logs kept after a snapshot, so the
	// stopped member must catch up by installing a snapshot.
	for range 6 {
		submit(l2)
	}
	if err := l2.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.restart(old)
	check()
	if a, b := c.members[old].fsm.AppliedIndex(), l2.fsm.AppliedIndex(); a != b {
		t.Fatalf("restarted member at %d, leader at %d", a, b)
	}

	// A partitioned follower: the majority keeps committing; the follower
	// cannot.
	l3 := c.leader(10 * time.Second)
	f := (indexOf(c, l3) + 1) % 3
	c.partition(f)
	submit(l3)
	if _, err := c.members[f].Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: 1}}}); !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
		t.Fatalf("proposal on a partitioned follower: %v", err)
	}
	c.heal()
	check()

	// A partitioned leader: it steps down, the majority elects another.
	l4 := c.leader(10 * time.Second)
	li := indexOf(c, l4)
	c.partition(li)
	l5 := testwait.For(t, 10*time.Second, func() (*Member, bool) {
		for i, m := range c.members {
			if i != li && m.IsLeader() {
				return m, true
			}
		}
		return nil, false
	}, "majority elected no leader")
	submit(l5)
	c.heal()
	check()
}

func indexOf(c *cluster, m *Member) int {
	for i, x := range c.members {
		if x == m {
			return i
		}
	}
	return -1
}

// TestEpochReportSigned: an epoch closed by the leader is audited and
// signed by every member until the report is complete.
func TestEpochReportSigned(t *testing.T) {
	p, pk, _ := testKeys(t)
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.EpochInterval = 300 * time.Millisecond
		cfg.Schedule.Tick = 100 * time.Millisecond
		cfg.Schedule.Interval = time.Hour
	})
	ctx := context.Background()
	n := newTestNode(1)
	// One accepted verdict, answered on whichever member leads; a
	// leadership change in the middle (short election timeouts on a loaded
	// machine) starts the answer again on the new leader.
	var l *Member
	for attempt := 0; ; attempt++ {
		l = c.leader(10 * time.Second)
		err := func() error {
			if _, err := l.pipeline.Register(ctx, n.registerReq(time.Now())); err != nil {
				return err
			}
			ch, err := tryIssue(l, n)
			if err != nil {
				return err
			}
			tree := work(t, p, ch)
			if _, err := l.pipeline.Commit(ctx, n.commitReq(ch, tree.Root())); err != nil {
				return err
			}
			r, err := l.pipeline.Proof(ctx, n.proofReq(ch, prove(t, l, pk, tree, ch)))
			if err == nil && !r.Verdict.Accepted {
				t.Fatalf("honest proof rejected: %v", r.Verdict)
			}
			return err
		}()
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrOutcomeUnknown) || attempt == 4 {
			t.Fatalf("answering a challenge: %v", err)
		}
		t.Logf("leadership changed while answering (%v); again on the new leader", err)
	}
	es := testwait.For(t, 20*time.Second, func() (*truegpuv1.EpochState, bool) {
		es, err := l.fsm.LatestEpoch(true)
		return es, err == nil && len(es.Report.Signatures) == 3
	}, "no epoch report signed by all three members")
	checkSignatures(t, l, es)
}

// checkSignatures verifies the signatures a report collected against its
// signers, as a consumer of the feed does.
func checkSignatures(t testing.TB, m *Member, es *truegpuv1.EpochState) {
	t.Helper()
	var sigs [][]byte
	var members []ethcrypto.Address
	for _, s := range es.Report.Signatures {
		sigs = append(sigs, s.Signature)
	}
	for _, s := range es.Report.Signers {
		members = append(members, ethcrypto.MustParseAddress(s))
	}
	if err := verifyReport(m, es, sigs, members); err != nil {
		t.Fatal(err)
	}
}

func verifyReport(m *Member, es *truegpuv1.EpochState, sigs [][]byte, members []ethcrypto.Address) error {
	return reputationVerify(m.fsm.Domain(), reportOf(es.Report), sigs, members, int(es.Report.Threshold))
}

// TestMembership joins a fourth member, checks it catches up, then
// removes it.
func TestMembership(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	if _, err := l.pipeline.Register(ctx, newTestNode(1).registerReq(time.Now())); err != nil {
		t.Fatal(err)
	}
	// A fourth member that does not bootstrap.
	addr, tr := raft.NewInmemTransport("m3")
	c.trans = append(c.trans, tr)
	c.dirs = append(c.dirs, t.TempDir())
	c.peers = append(c.peers, raft.Server{ID: "m3", Address: addr, Suffrage: raft.Voter})
	c.members = append(c.members, nil)
	c.servers = append(c.servers, nil)
	c.connectAll()
	saved := c.tune
	c.tune = func(cfg *Config) { cfg.Bootstrap = false }
	c.start(3)
	c.tune = saved
	m3 := c.members[3]
	// An unsigned row is refused; joining with the id and Raft address
	// only adds the voter, and the member publishes its own signed row.
	if _, err := l.Join(ctx, &truegpuv1.SetMemberCommand{Id: "m3", RaftAddress: string(addr), SignerAddress: m3.signer[:], GrpcAddress: m3.cfg.GRPCAdvertise}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("join with an unsigned row: %v, want ErrInvalidRequest", err)
	}
	if _, err := l.Join(ctx, &truegpuv1.SetMemberCommand{Id: "m3", RaftAddress: string(addr)}); err != nil {
		t.Fatalf("join: %v", err)
	}
	testwait.Until(t, 20*time.Second, func() bool { return m3.selfRegistered() && l.selfRegistered() },
		"the joined member's signed row never reached the member table")
	c.converge(20 * time.Second)
	if _, err := m3.fsm.Node(newTestNode(1).key.Address()); err != nil {
		t.Fatalf("joined member did not catch up: %v", err)
	}
	if n := len(l.raft.GetConfiguration().Configuration().Servers); n != 4 {
		t.Fatalf("%d servers after join", n)
	}
	if _, err := l.Remove(ctx, "m3"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if n := len(l.raft.GetConfiguration().Configuration().Servers); n != 3 {
		t.Fatalf("%d servers after remove", n)
	}
	// The removed member keeps running; it must not re-add itself. Its
	// self-registration loop asks the leader to refresh its row with a
	// refresh-only JoinMember: that call, made here as the loop makes it,
	// is refused, and the configuration keeps three servers.
	row, err := m3.signedSelfMeta()
	if err != nil {
		t.Fatal(err)
	}
	if err := m3.forwardJoin(ctx, l.cfg.GRPCAdvertise, row); err == nil || !strings.Contains(err.Error(), ErrNotMember.Error()) {
		t.Fatalf("a removed member's refresh of its row: %v, want %q", err, ErrNotMember)
	}
	if n := len(l.raft.GetConfiguration().Configuration().Servers); n != 3 {
		t.Fatalf("%d servers after the removed member asked to refresh its row", n)
	}
	members, _ := l.fsm.Members()
	for _, m := range members {
		if m.Id == "m3" {
			t.Fatal("removed member still in the member table")
		}
	}
	c.stop(3)
}

// TestStateDirLost restarts a member whose state directory was lost: it
// restores its newest snapshot, replays the log after it and converges.
func TestStateDirLost(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	for i := range 5 {
		if _, err := l.pipeline.Register(ctx, newTestNode(i).registerReq(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	c.converge(10 * time.Second)
	f := (indexOf(c, l) + 1) % 3
	if err := c.members[f].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.pipeline.Register(ctx, newTestNode(9).registerReq(time.Now())); err != nil {
		t.Fatal(err)
	}
	c.converge(10 * time.Second)
	c.stop(f)
	if err := os.RemoveAll(filepath.Join(c.dirs[f], "state")); err != nil {
		t.Fatal(err)
	}
	c.restart(f)
	want := c.converge(20 * time.Second)
	if h, _ := c.members[f].fsm.StateHash(); h != want {
		t.Fatal("restored member differs")
	}
}
