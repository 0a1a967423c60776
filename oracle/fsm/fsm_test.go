package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

func openFSM(t testing.TB) *FSM {
	t.Helper()
	// A short retention, so that command streams exercise pruning.
	f, err := Open(t.TempDir(), Config{RetainEpochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// gen produces a plausible command stream: registrations (some sharing
// device identities), challenges, commitments (some late), verdicts,
// expiries, epoch closes, member changes and report signatures, plus
// some commands that must fail.
type gen struct {
	rng     *rand.Rand
	now     int64
	nodes   [][]byte
	open    [][]byte          // issued, not yet decided (as the generator believes)
	owner   map[string][]byte // challenge id -> node address
	members []*ethcrypto.PrivateKey
	epoch   uint64
}

func newGen(seed uint64) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(seed, 1)), now: 1_700_000_000_000, epoch: 1, owner: map[string][]byte{}}
	for i := range 3 {
		g.members = append(g.members, nodeKey([]byte(fmt.Sprintf("member-%d", i))))
	}
	return g
}

func device(i int, uuid string) *truegpuv1.Device {
	return &truegpuv1.Device{Index: uint32(i), ClaimedClass: "H100-SXM", Fingerprint: &truegpuv1.DeviceFingerprint{Uuid: uuid, Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 80 << 30}}
}

func (g *gen) cmd(body func(*truegpuv1.Command)) *truegpuv1.Command {
	g.now += int64(g.rng.IntN(500))
	c := &truegpuv1.Command{Version: CommandVersion, LeaderTimeUnixMs: g.now}
	body(c)
	return c
}

func (g *gen) next() *truegpuv1.Command {
	switch r := g.rng.IntN(100); {
	case r < 3 && len(g.members) > 0:
		i := g.rng.IntN(len(g.members))
		k := g.members[i]
		a := k.Address()
		return g.cmd(func(c *truegpuv1.Command) {
			row := &truegpuv1.SetMemberCommand{Id: fmt.Sprintf("m%d", i), SignerAddress: a[:], GrpcAddress: "127.0.0.1:1", Seq: uint64(g.now)}
			// Mostly the member's own signed row; sometimes another
			// member's key signs it, which must fail.
			if err := SignMemberRow(row, g.members[(i+g.rng.IntN(8)/7)%len(g.members)]); err != nil {
				panic(err)
			}
			c.Body = &truegpuv1.Command_SetMember{SetMember: row}
		})
	case r < 15 || len(g.nodes) == 0:
		k := nodeKey([]byte(fmt.Sprintf("node-%d", g.rng.IntN(40))))
		a := k.Address()
		uuid := fmt.Sprintf("GPU-%d", g.rng.IntN(50)) // collisions make duplicates
		g.nodes = append(g.nodes, a[:])
		return g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_RegisterNode{RegisterNode: signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, uuid)}})}
		})
	case r < 40:
		var chs []*truegpuv1.IssuedChallenge
		for range 1 + g.rng.IntN(3) {
			a := g.nodes[g.rng.IntN(len(g.nodes))]
			var nonce [32]byte
			for i := range nonce {
				nonce[i] = byte(g.rng.Uint32())
			}
			id := truegpuv1.ChallengeID(nonce[:], a, 0, g.now)
			chs = append(chs, &truegpuv1.IssuedChallenge{Id: id[:], Address: a, Nonce: nonce[:], Profile: "test/v1", ClaimedClass: "H100-SXM",
				IssuedAtUnixMs: g.now, CommitDeadlineUnixMs: g.now + 2000, ProofDeadlineUnixMs: g.now + 60000, ExpectedLatencyMs: 800})
			g.open = append(g.open, id[:])
			g.owner[string(id[:])] = a
		}
		return g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}
		})
	case r < 60 && len(g.open) > 0:
		id := g.open[g.rng.IntN(len(g.open))]
		root := bytes.Repeat([]byte{byte(g.rng.IntN(256))}, 32)
		return g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_RecordCommitment{RecordCommitment: signCommit(g.owner[string(id)], &truegpuv1.RecordCommitmentCommand{ChallengeId: id, Root: root, ReceivedAtUnixMs: g.now, SampleSeed: root[:SampleSeedSize]})}
		})
	case r < 80 && len(g.open) > 0:
		i := g.rng.IntN(len(g.open))
		id := g.open[i]
		g.open = append(g.open[:i], g.open[i+1:]...)
		v := &truegpuv1.VerdictRecord{ChallengeId: id, Accepted: g.rng.IntN(3) > 0, DecidedAtUnixMs: g.now, Proof: []byte{1, 2, 3}}
		if !v.Accepted {
			v.Reason = string(reputation.ReasonProofInvalid)
		}
		signVerdict(g.owner[string(id)], v)
		return g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_RecordVerdicts{RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}}}
		})
	case r < 88 && len(g.open) > 0:
		g.now += 3000
		return g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_ExpireChallenges{ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: g.open[:min(len(g.open), 3)]}}
		})
	case r < 93:
		e := g.epoch
		g.epoch++
		return g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: e}}
		})
	default:
		return g.cmd(func(c *truegpuv1.Command) { c.Version = 99 }) // must fail, change nothing but the index
	}
}

// signCmd returns report-signature commands for the newest closed epoch,
// computed from replica f (the report digest is state).
func signCmds(t testing.TB, f *FSM, g *gen) []*truegpuv1.Command {
	es, err := f.LatestEpoch(false)
	if err != nil {
		return nil
	}
	var out []*truegpuv1.Command
	for i, k := range g.members {
		sig, err := k.SignHash([32]byte(es.Report.Digest))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g.cmd(func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_AddReportSignature{AddReportSignature: &truegpuv1.AddReportSignatureCommand{Epoch: es.Report.Epoch,
				Signature: &truegpuv1.MemberSignature{MemberId: fmt.Sprintf("m%d", i), SignerAddress: k.Address().String(), Signature: sig[:]}}}
		}))
	}
	return out
}

func entry(t testing.TB, index uint64, c *truegpuv1.Command) *raft.Log {
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}
}

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var buf bytes.Buffer
	if err := writeSnapshot(s.(*snapshot).snap, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustHash(t testing.TB, f *FSM) [32]byte {
	h, err := f.StateHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDeterminism applies one command stream to several replicas with
// different batch boundaries, restoring replicas from snapshots of others at
// random points, and requires identical state hashes at the end and at
// every restore.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := newGen(seed)
			var logs []*raft.Log
			ref := openFSM(t) // applies one entry at a time, builds the stream
			for i := range 600 {
				cmds := []*truegpuv1.Command{g.next()}
				if i%60 == 59 {
					cmds = append(cmds, signCmds(t, ref, g)...)
				}
				for _, c := range cmds {
					l := entry(t, uint64(len(logs)+1), c)
					logs = append(logs, l)
					ref.Apply(l)
				}
			}
			rng := rand.New(rand.NewPCG(seed, 2))
			replicas := []*FSM{openFSM(t), openFSM(t), openFSM(t)}
			for ri, f := range replicas {
				for i := 0; i < len(logs); {
					n := 1 + rng.IntN(1+ri*20)
					end := min(i+n, len(logs))
					f.ApplyBatch(logs[i:end])
					i = end
					if rng.IntN(20) == 0 {
						// Restore a fresh replica from this one's snapshot and
						// carry on with it.
						snap := snapshotBytes(t, f)
						fresh := openFSM(t)
						if err := fresh.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
							t.Fatal(err)
						}
						if mustHash(t, fresh) != mustHash(t, f) || fresh.AppliedIndex() != f.AppliedIndex() {
							t.Fatalf("replica %d: restored state differs at index %d", ri, f.AppliedIndex())
						}
						f = fresh
						replicas[ri] = f
					}
				}
			}
			want := mustHash(t, ref)
			for i, f := range replicas {
				if got := mustHash(t, f); got != want {
					t.Fatalf("replica %d: state hash %x, reference %x", i, got, want)
				}
				if f.AppliedIndex() != uint64(len(logs)) {
					t.Fatalf("replica %d applied %d of %d", i, f.AppliedIndex(), len(logs))
				}
				// The in-memory indexes kept up batch by batch equal the
				// ones rebuilt from the state.
				var open openIndex
				var cache applyCache
				if err := open.load(f); err != nil {
					t.Fatal(err)
				}
				if err := cache.load(f.db); err != nil {
					t.Fatal(err)
				}
				if !sameOpen(open.byNode, f.open.byNode) || len(open.byNode) == 0 {
					t.Fatalf("replica %d: open index differs from a rebuild (%d nodes, rebuilt %d)", i, len(f.open.byNode), len(open.byNode))
				}
				if !reflect.DeepEqual(cache.devices, f.cache.devices) {
					t.Fatalf("replica %d: device counts differ from a rebuild", i)
				}
			}
			// The stream exercised the interesting paths.
			meta, _ := ref.Meta()
			es, err := ref.LatestEpoch(true)
			if meta.TotalVerdicts == 0 || meta.NodeCount == 0 || err != nil || len(es.Report.Signatures) < int(es.Report.Threshold) {
				t.Fatalf("stream too thin: meta %v, complete epoch %v, %v", meta, es, err)
			}
		})
	}
}

// TestReplaySkipped: entries at or below the applied index (replayed by
// Raft after a restart) do not change the state.
func TestReplaySkipped(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(7)
	var logs []*raft.Log
	for i := range 50 {
		logs = append(logs, entry(t, uint64(i+1), g.next()))
	}
	f.ApplyBatch(logs)
	h := mustHash(t, f)
	f.Close()
	f, err = Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.AppliedIndex() != 50 {
		t.Fatalf("applied index after reopen = %d, want 50", f.AppliedIndex())
	}
	res := f.ApplyBatch(logs[40:])
	if mustHash(t, f) != h {
		t.Fatal("replayed entries changed the state")
	}
	if r := res[0].(*Result); !errors.Is(r.Errs[0], ErrConflict) {
		t.Fatalf("replayed entry result = %v, want ErrConflict", r.Errs)
	}
}

// commandAt wraps a command body in a version-1 envelope with leader time
// now.
func commandAt(now int64, body any) *truegpuv1.Command {
	c := &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: now}
	switch b := body.(type) {
	case *truegpuv1.RegisterNodeCommand:
		c.Body = &truegpuv1.Command_RegisterNode{RegisterNode: b}
	case *truegpuv1.IssueChallengesCommand:
		c.Body = &truegpuv1.Command_IssueChallenges{IssueChallenges: b}
	case *truegpuv1.RecordCommitmentCommand:
		c.Body = &truegpuv1.Command_RecordCommitment{RecordCommitment: b}
	case *truegpuv1.RecordWalkCommand:
		c.Body = &truegpuv1.Command_RecordWalk{RecordWalk: b}
	case *truegpuv1.RecordVerdictsCommand:
		c.Body = &truegpuv1.Command_RecordVerdicts{RecordVerdicts: b}
	case *truegpuv1.ExpireChallengesCommand:
		c.Body = &truegpuv1.Command_ExpireChallenges{ExpireChallenges: b}
	case *truegpuv1.CloseEpochCommand:
		c.Body = &truegpuv1.Command_CloseEpoch{CloseEpoch: b}
	default:
		panic(fmt.Sprintf("commandAt: no envelope case for %T", body))
	}
	return c
}

func apply1(t *testing.T, f *FSM, c *truegpuv1.Command) error {
	t.Helper()
	r := f.Apply(entry(t, f.AppliedIndex()+1, c)).(*Result)
	return r.Errs[0]
}

func TestCommandErrors(t *testing.T) {
	f := openFSM(t)
	k := nodeKey([]byte("n"))
	a := k.Address()
	now := int64(1_700_000_000_000)
	mk := func(body any) *truegpuv1.Command { return commandAt(now, body) }
	if err := apply1(t, f, mk(signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, "GPU-1")}}))); err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{7}, 32)
	id := truegpuv1.ChallengeID(nonce, a[:], 0, now)
	ch := &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000, ProofDeadlineUnixMs: now + 5000, ExpectedLatencyMs: 100}
	if err := apply1(t, f, mk(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}})); err != nil {
		t.Fatal(err)
	}
	unknownDev := proto.Clone(ch).(*truegpuv1.IssuedChallenge)
	unknownDev.DeviceIndex = 3
	unknownDev.Nonce = bytes.Repeat([]byte{8}, 32)
	uid := truegpuv1.ChallengeID(unknownDev.Nonce, a[:], 3, now)
	unknownDev.Id = uid[:]
	// The same nonce again, for another device of the node: a fresh id,
	// but a nonce the state already holds.
	reusedNonce := proto.Clone(ch).(*truegpuv1.IssuedChallenge)
	reusedNonce.IssuedAtUnixMs = now + 1
	rid := truegpuv1.ChallengeID(nonce, a[:], 0, now+1)
	reusedNonce.Id = rid[:]
	twice := proto.Clone(unknownDev).(*truegpuv1.IssuedChallenge)
	twice.DeviceIndex = 0
	tid := truegpuv1.ChallengeID(twice.Nonce, a[:], 0, now)
	twice.Id = tid[:]
	twiceB := proto.Clone(twice).(*truegpuv1.IssuedChallenge)
	twiceB.IssuedAtUnixMs = now + 2
	tbid := truegpuv1.ChallengeID(twice.Nonce, a[:], 0, now+2)
	twiceB.Id = tbid[:]
	before := hashExceptApplied(t, f)
	tests := []struct {
		name string
		cmd  *truegpuv1.Command
		want error
	}{
		{"unknown body", &truegpuv1.Command{Version: 1}, ErrUnknownCommand},
		{"version", &truegpuv1.Command{Version: 2}, ErrUnsupportedVersion},
		{"short address", mk(signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:5], Devices: []*truegpuv1.Device{device(0, "x")}})), ErrInvalidCommand},
		{"duplicate device", mk(signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, "x"), device(1, "x")}})), ErrInvalidCommand},
		{"reissue", mk(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}), ErrConflict},
		{"unknown device", mk(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{unknownDev}}), ErrInvalidCommand},
		{"reused nonce", mk(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{reusedNonce}}), ErrConflict},
		{"one nonce twice in a command", mk(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{twice, twiceB}}), ErrInvalidCommand},
		{"late commitment", mk(&truegpuv1.RecordCommitmentCommand{ChallengeId: id[:], Root: make([]byte, 32), ReceivedAtUnixMs: now + 1001, SampleSeed: make([]byte, SampleSeedSize)}), ErrLate},
		{"unknown challenge", mk(&truegpuv1.RecordCommitmentCommand{ChallengeId: make([]byte, 32), Root: make([]byte, 32), SampleSeed: make([]byte, SampleSeedSize)}), ErrNotFound},
		{"commitment without a sample seed", mk(&truegpuv1.RecordCommitmentCommand{ChallengeId: id[:], Root: make([]byte, 32), ReceivedAtUnixMs: now + 10}), ErrInvalidCommand},
		{"commitment with a short sample seed", mk(&truegpuv1.RecordCommitmentCommand{ChallengeId: id[:], Root: make([]byte, 32), ReceivedAtUnixMs: now + 10, SampleSeed: make([]byte, 8)}), ErrInvalidCommand},
		{"accept without commitment", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Accepted: true}}}), ErrConflict},
		{"reject without reason", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:]}}}), ErrInvalidCommand},
		{"late rejection with an on-time arrival", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Reason: "COMMITMENT_LATE", CommitReceivedAtUnixMs: now + 999}}}), ErrInvalidCommand},
		{"arrival on another reason", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Reason: "PROOF_INVALID", CommitReceivedAtUnixMs: now + 1500}}}), ErrInvalidCommand},
		{"reason that is not a verdict's", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Reason: "LIVENESS_MISSED"}}}), ErrInvalidCommand},
		{"well-formed but unknown reason", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Reason: "SOUNDS_BAD"}}}), ErrInvalidCommand},
		{"late rejection without an arrival", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Reason: "COMMITMENT_LATE"}}}), ErrInvalidCommand},
		{"proof rejection without a commitment", mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: id[:], Reason: "PROOF_INVALID", Proof: []byte{1}}}}), ErrConflict},
		{"stale epoch", mk(&truegpuv1.CloseEpochCommand{Epoch: 9}), ErrStaleEpoch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := apply1(t, f, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Failed commands change nothing but the applied index.
	after := mustHash(t, f)
	if hashExceptApplied(t, f) != before {
		t.Fatal("failed commands changed the state")
	}
	if err := apply1(t, f, mk(signCommit(a[:], &truegpuv1.RecordCommitmentCommand{ChallengeId: id[:], Root: make([]byte, 32), ReceivedAtUnixMs: now + 10, SampleSeed: make([]byte, SampleSeedSize)}))); err != nil {
		t.Fatal(err)
	}
	if err := apply1(t, f, mk(signCommit(a[:], &truegpuv1.RecordCommitmentCommand{ChallengeId: id[:], Root: make([]byte, 32), ReceivedAtUnixMs: now + 10, SampleSeed: make([]byte, SampleSeedSize)}))); !errors.Is(err, ErrConflict) {
		t.Fatalf("second commitment: %v, want ErrConflict", err)
	}
	// On a committed challenge: rejections must be consistent with it.
	committedCases := []struct {
		name string
		v    *truegpuv1.VerdictRecord
		want error
	}{
		{"acceptance without the proof", &truegpuv1.VerdictRecord{ChallengeId: id[:], Accepted: true}, ErrInvalidCommand},
		{"acceptance with a reason", &truegpuv1.VerdictRecord{ChallengeId: id[:], Accepted: true, Proof: []byte{1}, Reason: "PROOF_INVALID"}, ErrInvalidCommand},
		{"invalid without the proof", &truegpuv1.VerdictRecord{ChallengeId: id[:], Reason: "PROOF_INVALID"}, ErrInvalidCommand},
		{"late after the commitment", &truegpuv1.VerdictRecord{ChallengeId: id[:], Reason: "COMMITMENT_LATE", CommitReceivedAtUnixMs: now + 1500}, ErrConflict},
	}
	for _, tc := range committedCases {
		if err := apply1(t, f, mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{tc.v}})); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	v := signVerdict(a[:], &truegpuv1.VerdictRecord{ChallengeId: id[:], Accepted: true, Proof: []byte{1}})
	if err := apply1(t, f, mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}})); err != nil {
		t.Fatal(err)
	}
	if err := apply1(t, f, mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}})); !errors.Is(err, ErrConflict) {
		t.Fatalf("second verdict: %v, want ErrConflict", err)
	}
	rec, err := f.Node(a)
	if err != nil || rec.Counters.Accepted != 1 {
		t.Fatalf("node after verdict: %v %v", rec, err)
	}
	hist, open, err := f.ChallengeHistory(a, 16)
	if err != nil || len(hist) != 1 || hist[0].Outcome != OutcomeAccepted || open != 0 {
		t.Fatalf("history after verdict: %v open %d %v", hist, open, err)
	}
	if after == mustHash(t, f) {
		t.Fatal("state did not change")
	}
}

func TestIgnoreIfUnknown(t *testing.T) {
	f := openFSM(t)
	if err := apply1(t, f, &truegpuv1.Command{Version: 1, IgnoreIfUnknown: true}); err != nil {
		t.Fatalf("ignored command failed: %v", err)
	}
}

func TestDuplicateIdentity(t *testing.T) {
	f := openFSM(t)
	var addrs []ethcrypto.Address
	for i := range 2 {
		a := nodeKey([]byte{byte(i)}).Address()
		addrs = append(addrs, a)
		c := &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: 1000, Body: &truegpuv1.Command_RegisterNode{RegisterNode: signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, "GPU-same")}})}}
		if err := apply1(t, f, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range addrs {
		rec, err := f.Node(a)
		if err != nil {
			t.Fatal(err)
		}
		// A shared identity opens a contest that the storms decide; the
		// registration alone convicts nobody.
		if rec.Status != truegpuv1.NodeStatus_NODE_STATUS_PROBATION {
			t.Errorf("node %s sharing a UUID has status %v, want probation", a, rec.Status)
		}
		// The reason names the shared identity and points at the other
		// node, never at the node itself.
		var found bool
		for _, r := range rec.Reasons {
			if r.Code != "IDENTITY_CONTESTED" {
				continue
			}
			found = true
			if !strings.Contains(r.Detail, "GPU-same") {
				t.Errorf("node %s: IDENTITY_CONTESTED detail %q does not name the shared identity", a, r.Detail)
			}
			var related []string
			for _, e := range r.Evidence {
				related = append(related, e.RelatedAddresses...)
			}
			other := addrs[0]
			if other == a {
				other = addrs[1]
			}
			if !slices.Contains(related, other.String()) {
				t.Errorf("node %s: related addresses %v lack the other node %s", a, related, other)
			}
			if slices.Contains(related, a.String()) {
				t.Errorf("node %s: related addresses %v include the node itself", a, related)
			}
		}
		if !found {
			t.Errorf("node %s: no IDENTITY_CONTESTED reason in %v", a, rec.Reasons)
		}
	}
}

func TestRestoreRejectsCorruptSnapshot(t *testing.T) {
	src := openFSM(t)
	g := newGen(3)
	for i := range 30 {
		src.Apply(entry(t, uint64(i+1), g.next()))
	}
	snap := snapshotBytes(t, src)
	dst := openFSM(t)
	dst.Apply(entry(t, 1, g.next()))
	h := mustHash(t, dst)
	for _, mutate := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		func(b []byte) []byte { return b[:len(b)-1] },
		func(b []byte) []byte { return append(b, 0) },
		func(b []byte) []byte { b[0] = 'X'; return b },
	} {
		bad := mutate(bytes.Clone(snap))
		if err := dst.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("corrupt snapshot: %v, want ErrBadSnapshot", err)
		}
		if mustHash(t, dst) != h {
			t.Fatal("a failed restore changed the state")
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	src, err := Open(f.TempDir(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	g := newGen(5)
	for i := range 20 {
		src.Apply(entry(f, uint64(i+1), g.next()))
	}
	f.Add(snapshotBytes(f, src))
	src.Close()
	f.Add([]byte(snapshotMagic + "\x00\x00\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_, err := decodeSnapshot(bytes.NewReader(b), func(k, v []byte) error { n++; return nil })
		if err != nil && !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// FuzzApplyCommand applies arbitrary entries. Every entry is accounted
// (the applied index advances), and a command that fails leaves no trace:
// an entry none of whose commands applied changes nothing but the applied
// index, neither the state hash nor the in-memory indexes, and a twin
// replica that applies each entry without its failed commands (a no-op
// entry when none applied) keeps the same state hash.
func FuzzApplyCommand(f *testing.F) {
	g := newGen(9)
	for range 30 {
		b, _ := Encode(g.next())
		f.Add(b)
	}
	for range 4 {
		batch := &truegpuv1.CommandBatch{}
		for range 6 {
			batch.Commands = append(batch.Commands, g.next())
		}
		b, _ := Encode(&truegpuv1.Command{Version: CommandVersion, LeaderTimeUnixMs: g.now, Body: &truegpuv1.Command_Batch{Batch: batch}})
		f.Add(b)
	}
	fsm, err := Open(f.TempDir(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer fsm.Close()
	twin, err := Open(f.TempDir(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer twin.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		idx := fsm.AppliedIndex() + 1
		before := hashExceptApplied(t, fsm)
		_, cursor := fsm.DeviceCounts()
		open := openCopy(fsm)
		r := fsm.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(*Result)
		if r.Index != idx || fsm.AppliedIndex() != idx {
			t.Fatalf("entry %d not accounted", idx)
		}
		twin.Apply(withoutFailed(t, idx, b, r.Errs))
		if mustHash(t, twin) != mustHash(t, fsm) {
			t.Fatalf("entry %d: its failed commands (%v) left a trace: the state differs from applying the others alone", idx, r.Errs)
		}
		for _, err := range r.Errs {
			if err == nil {
				return
			}
		}
		if hashExceptApplied(t, fsm) != before {
			t.Fatalf("entry %d failed (%v) but changed the state hash", idx, r.Errs)
		}
		if _, c := fsm.DeviceCounts(); c != cursor {
			t.Fatalf("entry %d failed (%v) but recorded device changes", idx, r.Errs)
		}
		if !sameOpen(openCopy(fsm), open) {
			t.Fatalf("entry %d failed (%v) but changed the open challenges", idx, r.Errs)
		}
	})
}

// withoutFailed is entry idx with data b less the commands that failed
// (errs, one per command as Apply returned them): the batch of the
// commands that applied, the entry itself when its one command applied,
// and a no-op entry when nothing applied.
func withoutFailed(t *testing.T, idx uint64, b []byte, errs []error) *raft.Log {
	noop := &raft.Log{Index: idx, Type: raft.LogNoop}
	var cmd truegpuv1.Command
	if proto.Unmarshal(b, &cmd) != nil {
		return noop
	}
	batch := cmd.GetBatch()
	if batch == nil || cmd.Version != CommandVersion {
		if len(errs) == 1 && errs[0] == nil {
			return &raft.Log{Index: idx, Type: raft.LogCommand, Data: b}
		}
		return noop
	}
	if len(errs) != len(batch.Commands) {
		t.Fatalf("entry %d: %d results for %d commands", idx, len(errs), len(batch.Commands))
	}
	var kept []*truegpuv1.Command
	for i, c := range batch.Commands {
		if errs[i] == nil {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		return noop
	}
	batch.Commands = kept
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(&cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: idx, Type: raft.LogCommand, Data: data}
}

// openCopy copies f's index of open challenges.
func openCopy(f *FSM) map[[20]byte][][32]byte {
	f.open.mu.RLock()
	defer f.open.mu.RUnlock()
	out := make(map[[20]byte][][32]byte, len(f.open.byNode))
	for a, ids := range f.open.byNode {
		out[a] = slices.Clone(ids)
	}
	return out
}

func BenchmarkApplyBatch(b *testing.B) {
	f := openFSM(b)
	g := newGen(11)
	const per = 256
	b.ReportAllocs()
	idx := uint64(0)
	for b.Loop() {
		batch := &truegpuv1.CommandBatch{}
		for range per {
			batch.Commands = append(batch.Commands, g.next())
		}
		idx++
		f.Apply(entry(b, idx, &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_Batch{Batch: batch}}))
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkApplyIssue measures one replica applying batch entries of 256
// challenge issues (the commonest command) over 1,024 registered nodes.
func BenchmarkApplyIssue(b *testing.B) {
	f := openFSM(b)
	var addrs [][]byte
	idx := uint64(0)
	reg := &truegpuv1.CommandBatch{}
	for i := range 1024 {
		a := nodeKey([]byte(fmt.Sprintf("bench %d", i))).Address()
		addrs = append(addrs, a[:])
		reg.Commands = append(reg.Commands, &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_RegisterNode{RegisterNode: signRegister(&truegpuv1.RegisterNodeCommand{
			Address: a[:], Devices: []*truegpuv1.Device{device(0, fmt.Sprintf("GPU-%d", i))}})}})
	}
	idx++
	f.Apply(entry(b, idx, &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_Batch{Batch: reg}}))
	rng := rand.New(rand.NewPCG(1, 2))
	const per = 256
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		batch := &truegpuv1.CommandBatch{}
		for range per {
			a := addrs[rng.IntN(len(addrs))]
			var nonce [32]byte
			for i := range nonce {
				nonce[i] = byte(rng.Uint32())
			}
			id := truegpuv1.ChallengeID(nonce[:], a, 0, 1000)
			batch.Commands = append(batch.Commands, &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: 1000, Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{
				Challenges: []*truegpuv1.IssuedChallenge{{Id: id[:], Address: a, Nonce: nonce[:], IssuedAtUnixMs: 1000, CommitDeadlineUnixMs: 2000, ProofDeadlineUnixMs: 3000}}}}})
		}
		idx++
		f.Apply(entry(b, idx, &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_Batch{Batch: batch}}))
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "commands/s")
}

// TestExpiryReasons: a challenge that expires without a commitment is a
// liveness miss; one that was committed and never proven is a correctness
// failure (PROOF_MISSING), because the node could not open its own
// commitment.
func TestExpiryReasons(t *testing.T) {
	f := openFSM(t)
	now := int64(1_700_000_000_000)
	cmd := func(at int64, body func(*truegpuv1.Command)) *truegpuv1.Command {
		c := &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: at}
		body(c)
		return c
	}
	type node struct {
		addr ethcrypto.Address
		id   [32]byte
	}
	var nodes []node
	for i, commit := range []bool{false, true} {
		a := nodeKey([]byte{'e', byte(i)}).Address()
		if err := apply1(t, f, cmd(now, func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_RegisterNode{RegisterNode: signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, fmt.Sprintf("GPU-e%d", i))}})}
		})); err != nil {
			t.Fatal(err)
		}
		nonce := bytes.Repeat([]byte{byte(i + 1)}, 32)
		id := truegpuv1.ChallengeID(nonce, a[:], 0, now)
		ch := &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000, ProofDeadlineUnixMs: now + 5000, ExpectedLatencyMs: 100}
		if err := apply1(t, f, cmd(now, func(c *truegpuv1.Command) {
			c.Body = &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}
		})); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := apply1(t, f, cmd(now+200, func(c *truegpuv1.Command) {
				c.Body = &truegpuv1.Command_RecordCommitment{RecordCommitment: signCommit(a[:], &truegpuv1.RecordCommitmentCommand{ChallengeId: id[:], Root: make([]byte, 32), ReceivedAtUnixMs: now + 200, SampleSeed: make([]byte, SampleSeedSize)})}
			})); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, node{a, id})
	}
	if err := apply1(t, f, cmd(now+6000, func(c *truegpuv1.Command) {
		c.Body = &truegpuv1.Command_ExpireChallenges{ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{nodes[0].id[:], nodes[1].id[:]}}}
	})); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		reason    string
		dimension string
	}{{"LIVENESS_MISSED", "liveness"}, {"PROOF_MISSING", "correctness"}} {
		hist, _, err := f.ChallengeHistory(nodes[i].addr, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 || hist[0].Outcome != OutcomeMissed || hist[0].Reason != want.reason {
			t.Errorf("node %d: history %v, want one missed challenge with reason %s", i, hist, want.reason)
		}
		rec, err := f.Node(nodes[i].addr)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, r := range rec.Reasons {
			if r.Code == want.reason && strings.HasPrefix(r.Detail, want.dimension) {
				found = true
			}
		}
		if !found {
			t.Errorf("node %d: reasons %v lack %s against %s", i, rec.Reasons, want.reason, want.dimension)
		}
		if rec.Counters.Missed != 1 {
			t.Errorf("node %d: missed counter %d, want 1", i, rec.Counters.Missed)
		}
	}
}

// sameOpen compares two open indexes, ignoring the order of each node's ids.
func sameOpen(a, b map[[20]byte][][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, ids := range a {
		x, y := slices.Clone(ids), slices.Clone(b[k])
		cmp := func(p, q [32]byte) int { return bytes.Compare(p[:], q[:]) }
		slices.SortFunc(x, cmp)
		slices.SortFunc(y, cmp)
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}

// hashExceptApplied hashes every key and value but the applied index.
func hashExceptApplied(t *testing.T, f *FSM) [32]byte {
	t.Helper()
	h, err := f.hashState(func(k []byte) bool { return !bytes.Equal(k, keyApplied) })
	if err != nil {
		t.Fatal(err)
	}
	return h
}
