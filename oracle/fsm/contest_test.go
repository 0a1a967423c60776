package fsm

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// contest drives registrations, challenges and epoch closes of a few nodes
// through the state machine.
type contest struct {
	t   *testing.T
	f   *FSM
	now int64
	seq int
}

func (c *contest) apply(body any) {
	c.t.Helper()
	c.now += 10
	if err := apply1(c.t, c.f, commandAt(c.now, body)); err != nil {
		c.t.Fatalf("%T: %v", body, err)
	}
}

func (c *contest) register(a ethcrypto.Address, uuid string) {
	c.t.Helper()
	c.apply(signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, uuid)}}))
}

// challenge issues one challenge of each node's device 0 at one instant
// (a storm), then records an accepted verdict for those in answer and lets
// the others expire.
func (c *contest) challenge(nodes []ethcrypto.Address, answer map[ethcrypto.Address]bool) {
	c.t.Helper()
	c.now += 3_600_000
	issued := c.now
	var chs []*truegpuv1.IssuedChallenge
	for _, a := range nodes {
		c.seq++
		nonce := sha256.Sum256([]byte(fmt.Sprint("contest-", c.seq)))
		id := truegpuv1.ChallengeID(nonce[:], a[:], 0, issued)
		chs = append(chs, &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce[:], IssuedAtUnixMs: issued,
			CommitDeadlineUnixMs: issued + 1000, ProofDeadlineUnixMs: issued + 5000, ExpectedLatencyMs: 100, StormId: "storm-test"})
	}
	if err := apply1(c.t, c.f, commandAt(issued, &truegpuv1.IssueChallengesCommand{Challenges: chs})); err != nil {
		c.t.Fatal(err)
	}
	var late [][]byte
	for i, a := range nodes {
		if !answer[a] {
			late = append(late, chs[i].Id)
			continue
		}
		c.apply(signCommit(a[:], &truegpuv1.RecordCommitmentCommand{ChallengeId: chs[i].Id, Root: make([]byte, 32), ReceivedAtUnixMs: c.now + 10, SampleSeed: make([]byte, SampleSeedSize)}))
		c.apply(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{signVerdict(a[:], &truegpuv1.VerdictRecord{ChallengeId: chs[i].Id, Accepted: true, Proof: []byte{1}})}})
	}
	if len(late) > 0 {
		c.now = issued + 2000
		c.apply(&truegpuv1.ExpireChallengesCommand{ChallengeIds: late})
	}
}

func (c *contest) closeEpoch() {
	c.t.Helper()
	meta, err := c.f.Meta()
	if err != nil {
		c.t.Fatal(err)
	}
	c.apply(&truegpuv1.CloseEpochCommand{Epoch: meta.CurrentEpoch})
}

func (c *contest) status(a ethcrypto.Address) truegpuv1.NodeStatus {
	c.t.Helper()
	rec, err := c.f.Node(a)
	if err != nil {
		c.t.Fatal(err)
	}
	return rec.Status
}

func (c *contest) hasReason(a ethcrypto.Address, code string) bool {
	rec, err := c.f.Node(a)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, r := range rec.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

func (c *contest) conflicts(a ethcrypto.Address) []reputation.Conflict {
	c.t.Helper()
	rec, err := c.f.Node(a)
	if err != nil {
		c.t.Fatal(err)
	}
	var st reputation.NodeState
	if err := st.UnmarshalBinary(rec.Reputation); err != nil {
		c.t.Fatal(err)
	}
	return st.Conflicts
}

const (
	trusted   = truegpuv1.NodeStatus_NODE_STATUS_TRUSTED
	probation = truegpuv1.NodeStatus_NODE_STATUS_PROBATION
	rejected  = truegpuv1.NodeStatus_NODE_STATUS_REJECTED
)

// trustedIncumbent registers a node with one device and gives it a long
// accepted history.
func (c *contest) trustedIncumbent(a ethcrypto.Address, uuid string) {
	c.t.Helper()
	c.register(a, uuid)
	for range 30 {
		c.challenge([]ethcrypto.Address{a}, map[ethcrypto.Address]bool{a: true})
	}
	if s := c.status(a); s != trusted {
		c.t.Fatalf("incumbent after 30 accepted challenges is %v", s)
	}
}

// TestContestCopierLoses: a fresh address re-sends a trusted node's
// fingerprint. The incumbent stays trusted throughout; the copier, which
// cannot answer for the device at the storm instants, is never trusted and
// loses the identity at the next epoch close.
func TestContestCopierLoses(t *testing.T) {
	c := &contest{t: t, f: openFSM(t), now: 1_700_000_000_000}
	honest := nodeKey([]byte("honest")).Address()
	copier := nodeKey([]byte("copier")).Address()
	c.trustedIncumbent(honest, "GPU-victim")
	c.register(copier, "GPU-victim")
	if s := c.status(honest); s != trusted {
		t.Fatalf("incumbent after the copy registered is %v, want trusted", s)
	}
	if s := c.status(copier); s == trusted || s == rejected {
		t.Fatalf("copier is %v, want probation or suspect while contested", s)
	}
	if !c.hasReason(copier, "IDENTITY_CONTESTED") {
		t.Fatal("copier has no IDENTITY_CONTESTED reason")
	}
	both := []ethcrypto.Address{honest, copier}
	for i := range 3 {
		c.challenge(both, map[ethcrypto.Address]bool{honest: true})
		c.closeEpoch()
		if s := c.status(honest); s != trusted {
			t.Fatalf("storm %d: incumbent is %v, want trusted", i, s)
		}
		if s := c.status(copier); s == trusted {
			t.Fatalf("storm %d: copier is trusted", i)
		}
	}
	if s := c.status(copier); s != rejected || !c.hasReason(copier, "IDENTITY_DUPLICATE_LOST") {
		t.Fatalf("copier after losing the storms is %v without IDENTITY_DUPLICATE_LOST", s)
	}
	if c.hasReason(honest, "IDENTITY_DUPLICATE_LOST") || c.hasReason(honest, "IDENTITY_DUPLICATE") || len(c.conflicts(honest)) != 0 {
		t.Fatalf("the incumbent carries a duplicate verdict or an open contest: %+v", c.conflicts(honest))
	}
	// The decided contest left the index; later epochs keep the outcome.
	c.challenge([]ethcrypto.Address{honest}, map[ethcrypto.Address]bool{honest: true})
	c.closeEpoch()
	if c.status(honest) != trusted || c.status(copier) != rejected {
		t.Fatalf("after the contest: incumbent %v, copier %v", c.status(honest), c.status(copier))
	}
}

// TestContestClonePair: two machines present one identity and both answer
// at the storm instants: both are rejected as a clone pair, the anchored
// incumbent included.
func TestContestClonePair(t *testing.T) {
	c := &contest{t: t, f: openFSM(t), now: 1_700_000_000_000}
	a := nodeKey([]byte("clone-a")).Address()
	b := nodeKey([]byte("clone-b")).Address()
	c.trustedIncumbent(a, "GPU-cloned")
	c.register(b, "GPU-cloned")
	both := []ethcrypto.Address{a, b}
	for range 3 {
		c.challenge(both, map[ethcrypto.Address]bool{a: true, b: true})
	}
	if s := c.status(b); s == trusted {
		t.Fatal("clone newcomer trusted before the decision")
	}
	c.closeEpoch()
	for _, n := range both {
		if s := c.status(n); s != rejected || !c.hasReason(n, "IDENTITY_DUPLICATE") {
			t.Fatalf("clone %s is %v without IDENTITY_DUPLICATE", n, s)
		}
	}
}

// TestContestOneMachineTwoNames: one GPU registered under two fresh
// addresses answers only one of each storm pair; the side that misses
// loses, the other wins.
func TestContestOneMachineTwoNames(t *testing.T) {
	c := &contest{t: t, f: openFSM(t), now: 1_700_000_000_000}
	a := nodeKey([]byte("sybil-a")).Address()
	b := nodeKey([]byte("sybil-b")).Address()
	c.register(a, "GPU-one")
	c.register(b, "GPU-one")
	if c.status(a) == rejected || c.status(b) == rejected {
		t.Fatal("a registration alone convicted a holder")
	}
	for range 3 {
		c.challenge([]ethcrypto.Address{a, b}, map[ethcrypto.Address]bool{a: true})
	}
	c.closeEpoch()
	if c.status(b) != rejected {
		t.Fatalf("holder that missed every storm is %v", c.status(b))
	}
	if c.status(a) == rejected || len(c.conflicts(a)) != 0 {
		t.Fatalf("holder that answered is %v with conflicts %+v", c.status(a), c.conflicts(a))
	}
}

// TestContestCopierFirstHolderLate: a copier without the GPU registers a
// device's identity first; the real holder registers after it, so it is the
// contest's newcomer, and it answers one storm but misses two more (a lossy
// link). Nobody answers by the usual count, yet the holder is the only one
// that ever answered for the device: the copier loses, the holder's
// contest ends in its favour and it is not rejected for the identity.
func TestContestCopierFirstHolderLate(t *testing.T) {
	c := &contest{t: t, f: openFSM(t), now: 1_700_000_000_000}
	copier := nodeKey([]byte("early-copier")).Address()
	holder := nodeKey([]byte("late-holder")).Address()
	c.register(copier, "GPU-late")
	c.register(holder, "GPU-late")
	both := []ethcrypto.Address{copier, holder}
	c.challenge(both, map[ethcrypto.Address]bool{holder: true})
	c.challenge(both, nil)
	c.challenge(both, nil)
	c.closeEpoch()
	if s := c.status(copier); s != rejected || !c.hasReason(copier, "IDENTITY_DUPLICATE_LOST") {
		t.Fatalf("copier that never answered is %v without IDENTITY_DUPLICATE_LOST", s)
	}
	if c.hasReason(holder, "IDENTITY_DUPLICATE_LOST") || c.hasReason(holder, "IDENTITY_DUPLICATE") || len(c.conflicts(holder)) != 0 {
		t.Fatalf("the only holder that answered lost the identity or is still contested: %+v", c.conflicts(holder))
	}
}
