package oracle

import (
	"context"
	"fmt"
	"google.golang.org/protobuf/proto"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/testlog"
	"github.com/truegpu/truegpu/internal/testwait"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

func testKeys(t testing.TB) (*prover.Profile, *prover.ProvingKey, *verifier.VerifyingKey) {
	t.Helper()
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := prover.UnsafeDevKeys(p, "") // set up once per process
	if err != nil {
		t.Fatal(err)
	}
	return p, pk, vk
}

// fakeClock is a settable clock for leader-side stamping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cluster is an in-process test cluster on Raft's in-memory transport,
// which can partition members.
type cluster struct {
	t       testing.TB
	members []*Member
	trans   []*raft.InmemTransport
	dirs    []string
	peers   []raft.Server
	servers []*grpc.Server
	tune    func(*Config)
	// log is every member's logger (each adds its member attribute): the
	// test's log.
	log *slog.Logger
}

func fastRaft() *raft.Config {
	rc := raft.DefaultConfig()
	// Short enough that failover tests finish in seconds, long enough
	// that a loaded 2-core machine (the whole suite runs two packages at
	// once) does not lose leaders to scheduling delays.
	rc.HeartbeatTimeout = 800 * time.Millisecond
	rc.ElectionTimeout = 800 * time.Millisecond
	rc.LeaderLeaseTimeout = 400 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = 200
	rc.SnapshotInterval = 200 * time.Millisecond
	rc.TrailingLogs = 50
	return rc
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newCluster(t testing.TB, n int, tune func(*Config)) *cluster {
	t.Helper()
	// The logger first: its cleanup then runs after the members' close.
	c := &cluster{t: t, tune: tune, log: testlog.New(t)}
	for i := range n {
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("m%d", i)))
		c.trans = append(c.trans, tr)
		c.dirs = append(c.dirs, t.TempDir())
		c.peers = append(c.peers, raft.Server{ID: raft.ServerID(fmt.Sprintf("m%d", i)), Address: addr, Suffrage: raft.Voter})
	}
	c.connectAll()
	c.members = make([]*Member, n)
	c.servers = make([]*grpc.Server, n)
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for i, m := range c.members {
			if m != nil {
				c.servers[i].Stop()
				m.Close()
			}
		}
	})
	return c
}

func (c *cluster) connectAll() {
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
}

func (c *cluster) start(i int) {
	c.t.Helper()
	p, _, vk := testKeys(c.t)
	cfg := Config{
		ID: string(c.peers[i].ID), DataDir: c.dirs[i], Transport: c.trans[i],
		SignerKey: ethcrypto.KeyFromSeed([]byte(fmt.Sprintf("test member %d", i))),
		Bootstrap: true, Peers: c.peers, Profile: p, VerifyingKey: vk,
		Schedule: ScheduleConfig{Tick: time.Hour}, EpochInterval: time.Hour,
		Raft: fastRaft(), Logger: c.log,
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.GRPCAdvertise = lis.Addr().String()
	m, err := Start(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	srv := NewGRPCServer(m)
	go srv.Serve(lis)
	c.servers[i] = srv
	c.members[i] = m
}

// stop closes member i (a crash to the others).
func (c *cluster) stop(i int) {
	c.servers[i].Stop()
	c.members[i].Close()
	c.members[i] = nil
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
}

// restart starts member i again from its data directory.
func (c *cluster) restart(i int) {
	_, tr := raft.NewInmemTransport(c.peers[i].Address)
	c.trans[i] = tr
	c.connectAll()
	c.start(i)
}

// partition cuts member i off from every other member.
func (c *cluster) partition(i int) {
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
}

func (c *cluster) heal() { c.connectAll() }

func (c *cluster) leader(timeout time.Duration) *Member {
	c.t.Helper()
	return testwait.For(c.t, timeout, func() (*Member, bool) {
		for _, m := range c.members {
			if m != nil && m.IsLeader() {
				return m, true
			}
		}
		return nil, false
	}, "no leader elected")
}

// converge waits until every running member applied the same index and
// has the same state hash.
func (c *cluster) converge(timeout time.Duration) [32]byte {
	c.t.Helper()
	var hash [32]byte
	testwait.UntilNil(c.t, timeout, func() error {
		var hashes [][32]byte
		var idx []uint64
		for _, m := range c.members {
			if m == nil {
				continue
			}
			h, err := m.fsm.StateHash()
			if err != nil {
				c.t.Fatal(err)
			}
			hashes = append(hashes, h)
			idx = append(idx, m.fsm.AppliedIndex())
		}
		for i := range hashes {
			if hashes[i] != hashes[0] || idx[i] != idx[0] {
				return fmt.Errorf("applied indexes %v", idx)
			}
		}
		hash = hashes[0]
		return nil
	}, "members did not converge")
	return hash
}

// testNode is a node identity with one simulated device record.
type testNode struct {
	key *attest.NodeKey
	dev *truegpuv1.Device
}

func newTestNode(i int) *testNode {
	k := attest.NodeKeyFromSeed([]byte(fmt.Sprintf("test node %d", i)))
	return &testNode{key: k, dev: &truegpuv1.Device{Index: 0, ClaimedClass: "H100-SXM", Fingerprint: &truegpuv1.DeviceFingerprint{
		Uuid: fmt.Sprintf("GPU-test-%d", i), Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 80 << 30}}}
}

func (n *testNode) addr() string { return n.key.Address().String() }

func (n *testNode) registerReq(now time.Time) *truegpuv1.RegisterNodeRequest {
	r := &truegpuv1.RegisterNodeRequest{Address: n.addr(), Devices: []*truegpuv1.Device{n.dev}, TimestampUnixMs: now.UnixMilli(), Cluster: DefaultClusterID}
	if err := n.key.Sign(r); err != nil {
		panic(err)
	}
	return r
}

// issue makes the leader issue one challenge to the node's device.
func issue(t testing.TB, m *Member, n *testNode) *truegpuv1.IssuedChallenge {
	t.Helper()
	ch, err := tryIssue(m, n)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// tryIssue is issue returning the proposal's error.
func tryIssue(m *Member, n *testNode) (*truegpuv1.IssuedChallenge, error) {
	s := newScheduler(m)
	ch, err := s.challenge(n.key.Address(), n.dev, m.cfg.Now(), "")
	if err != nil {
		return nil, err
	}
	_, err = m.Propose(context.Background(), &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{
		IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}})
	return ch, err
}

// work computes the honest result tree of a challenge.
func work(t testing.TB, p *prover.Profile, ch *truegpuv1.IssuedChallenge) *prover.Tree {
	t.Helper()
	tree, err := prover.NewTree(p, prover.Compute(p, prover.Nonce(ch.Nonce)))
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func (n *testNode) commitReq(ch *truegpuv1.IssuedChallenge, root [32]byte) *truegpuv1.SubmitCommitmentRequest {
	r := &truegpuv1.SubmitCommitmentRequest{ChallengeId: truegpuv1.FormatChallengeID(ch.Id), Address: n.addr(), Root: root[:]}
	if err := n.key.Sign(r); err != nil {
		panic(err)
	}
	return r
}

func (n *testNode) proofReq(ch *truegpuv1.IssuedChallenge, proof []byte) *truegpuv1.SubmitProofRequest {
	r := &truegpuv1.SubmitProofRequest{ChallengeId: truegpuv1.FormatChallengeID(ch.Id), Address: n.addr(), Proof: proof}
	if err := n.key.Sign(r); err != nil {
		panic(err)
	}
	return r
}

// signedProof is the node's signed proof submission for a challenge, as
// the replicated verdict carries it.
func (n *testNode) signedProof(id []byte, proof []byte) []byte {
	r := &truegpuv1.SubmitProofRequest{ChallengeId: truegpuv1.FormatChallengeID(id), Address: n.addr(), Proof: proof}
	if err := n.key.Sign(r); err != nil {
		panic(err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

// prove proves a committed challenge under the sample seed the member
// recorded with its commitment.
func prove(t testing.TB, m *Member, pk *prover.ProvingKey, tree *prover.Tree, ch *truegpuv1.IssuedChallenge) []byte {
	t.Helper()
	cs, err := m.fsm.Challenge(ch.Id)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.SampleSeed) != prover.SampleSeedSize {
		t.Fatalf("challenge %s has no sample seed (outcome %s)", truegpuv1.FormatChallengeID(ch.Id), cs.Outcome)
	}
	proof, err := prover.ProveTree(pk, tree, prover.Nonce(ch.Nonce), prover.Address(ch.Address), prover.SampleSeed(cs.SampleSeed))
	if err != nil {
		t.Fatal(err)
	}
	return proof
}
