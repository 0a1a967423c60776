package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// TestWalkCommand: a challenge with a memory phase records the node's own
// signed walk root once, before its walk deadline (the commitment's
// recorded arrival plus the phase's walk deadline); it is accepted only
// with a recorded walk and walk openings; a late walk is a WALK_LATE
// rejection against capacity, and a committed challenge that never walks
// expires as WALK_LATE too.
func TestWalkCommand(t *testing.T) {
	f := openFSM(t)
	now := int64(1_700_000_000_000)
	mk := func(at int64, body any) *truegpuv1.Command { return commandAt(at, body) }
	node, other := nodeKey([]byte("walk node")), nodeKey([]byte("walk other"))
	a, b := node.Address(), other.Address()
	for _, addr := range []ethcrypto.Address{a, b} {
		if err := apply1(t, f, mk(now, signRegister(&truegpuv1.RegisterNodeCommand{Address: addr[:], Devices: []*truegpuv1.Device{device(0, "GPU-"+addr.String())}}))); err != nil {
			t.Fatal(err)
		}
	}
	mp := &truegpuv1.MemoryParams{Blocks: 1024, Lanes: 64, Steps: 32, FillExpectedMs: 10, WalkExpectedMs: 400, WalkDeadlineMs: 1250}
	issue := func(seed byte) []byte {
		nonce := bytes.Repeat([]byte{seed}, 32)
		id := truegpuv1.ChallengeID(nonce, a[:], 0, now)
		ch := &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000,
			ProofDeadlineUnixMs: now + 5000, ExpectedLatencyMs: 100, Memory: mp}
		if err := apply1(t, f, mk(now, &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}})); err != nil {
			t.Fatal(err)
		}
		return id[:]
	}
	commit := func(id []byte, table []byte) error {
		return apply1(t, f, mk(now+100, signCommit(a[:], &truegpuv1.RecordCommitmentCommand{ChallengeId: id, Root: make([]byte, 32),
			ReceivedAtUnixMs: now + 100, SampleSeed: make([]byte, SampleSeedSize), TableRoot: table})))
	}
	walk := func(id []byte, at int64) *truegpuv1.RecordWalkCommand {
		return &truegpuv1.RecordWalkCommand{ChallengeId: id, WalkRoot: bytes.Repeat([]byte{7}, 32), ReceivedAtUnixMs: at, CheckSeed: make([]byte, SampleSeedSize)}
	}

	id := issue(1)
	if err := commit(id, nil); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("commitment without the table root: %v, want ErrInvalidCommand", err)
	}
	if err := apply1(t, f, mk(now+50, signWalk(a[:], walk(id, now+50)))); !errors.Is(err, ErrConflict) {
		t.Fatalf("walk before the commitment: %v, want ErrConflict", err)
	}
	if err := commit(id, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	// Deadline: commitment at now+100, walk deadline 1250 ms.
	for name, c := range map[string]*truegpuv1.RecordWalkCommand{
		"no signed request": walk(id, now+500),
		"another walk root": func() *truegpuv1.RecordWalkCommand {
			c := signWalk(a[:], walk(id, now+500))
			c.WalkRoot = bytes.Repeat([]byte{8}, 32)
			return c
		}(),
		"signed by another node": func() *truegpuv1.RecordWalkCommand {
			c := walk(id, now+500)
			c.SignedRequest = signedReq(b[:], &truegpuv1.SubmitWalkRequest{ChallengeId: truegpuv1.FormatChallengeID(id), Address: a.String(), WalkRoot: c.WalkRoot})
			return c
		}(),
		"short seed": func() *truegpuv1.RecordWalkCommand {
			c := signWalk(a[:], walk(id, now+500))
			c.CheckSeed = c.CheckSeed[:3]
			return c
		}(),
	} {
		if err := apply1(t, f, mk(now+500, c)); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%s: got %v, want ErrInvalidCommand", name, err)
		}
	}
	if err := apply1(t, f, mk(now+1351, signWalk(a[:], walk(id, now+1351)))); !errors.Is(err, ErrLate) {
		t.Fatalf("walk 1 ms after its deadline: %v, want ErrLate", err)
	}
	accept := &truegpuv1.VerdictRecord{ChallengeId: id, Accepted: true, Proof: []byte{1}, WalkOpenings: []byte{2}}
	if err := apply1(t, f, mk(now+1400, &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{signVerdict(a[:], accept)}})); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("acceptance before the walk is recorded: %v, want ErrInvalidCommand", err)
	}
	if err := apply1(t, f, mk(now+1350, signWalk(a[:], walk(id, now+1350)))); err != nil {
		t.Fatalf("walk at its deadline: %v", err)
	}
	if err := apply1(t, f, mk(now+1360, signWalk(a[:], walk(id, now+1360)))); !errors.Is(err, ErrConflict) {
		t.Fatalf("second walk: %v, want ErrConflict", err)
	}
	noOpenings := &truegpuv1.VerdictRecord{ChallengeId: id, Accepted: true, Proof: []byte{1}}
	if err := apply1(t, f, mk(now+1400, &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{signVerdict(a[:], noOpenings)}})); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("acceptance without walk openings: %v, want ErrInvalidCommand", err)
	}
	if err := apply1(t, f, mk(now+1400, &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{signVerdict(a[:], accept)}})); err != nil {
		t.Fatalf("acceptance with the walk and its openings: %v", err)
	}
	cs, err := f.Challenge(id)
	if err != nil {
		t.Fatal(err)
	}
	if el, ex := WalkLatency(cs); el != 1250 || ex != 400+750 {
		t.Fatalf("walk latency %d ms (expected %d ms), want 1250 ms measured against 1150 ms (400 ms and the allowances)", el, ex)
	}

	// A late walk: rejected with its arrival, against capacity.
	late := issue(2)
	if err := commit(late, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	lateV := func(at int64) *truegpuv1.VerdictRecord {
		return signVerdict(a[:], &truegpuv1.VerdictRecord{ChallengeId: late, Reason: string(reputation.ReasonWalkLate), WalkReceivedAtUnixMs: at})
	}
	if err := apply1(t, f, mk(now+1300, &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{lateV(now + 1300)}})); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("late-walk rejection with an arrival before the deadline: %v, want ErrInvalidCommand", err)
	}
	if err := apply1(t, f, mk(now+2000, &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{lateV(now + 2000)}})); err != nil {
		t.Fatalf("late-walk rejection: %v", err)
	}

	// Committed, never walked: expires as WALK_LATE once its walk
	// deadline has passed.
	never := issue(3)
	if err := commit(never, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	// Due at its walk deadline (now+1350), long before the proof deadline.
	if err := apply1(t, f, mk(now+1350, &truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{never}})); err != nil {
		t.Fatal(err)
	}
	if cs, err := f.Challenge(never); err != nil || cs.Outcome != OutcomeCommitted {
		t.Fatalf("expired at its walk deadline: %v %v, want still committed", cs.GetOutcome(), err)
	}
	if err := apply1(t, f, mk(now+1351, &truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{never}})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      []byte
		outcome string
	}{{late, OutcomeRejected}, {never, OutcomeMissed}} {
		cs, err := f.Challenge(c.id)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Outcome != c.outcome {
			t.Errorf("challenge %s: outcome %s, want %s", truegpuv1.FormatChallengeID(c.id), cs.Outcome, c.outcome)
		}
	}
	rec, err := f.Node(a)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rec.Reasons {
		if r.Code == string(reputation.ReasonWalkLate) && strings.HasPrefix(r.Detail, "capacity") {
			n++
		}
	}
	if n == 0 {
		t.Errorf("reasons %v: no WALK_LATE against capacity", rec.Reasons)
	}
}
