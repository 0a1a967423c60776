package fsm

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// testNodeKeys holds the keys of the test nodes, by address, so that tests
// can sign the node requests that commands carry.
var testNodeKeys sync.Map

// nodeKey is ethcrypto.KeyFromSeed, remembered for signing.
func nodeKey(seed []byte) *ethcrypto.PrivateKey {
	k := ethcrypto.KeyFromSeed(seed)
	testNodeKeys.Store(k.Address(), k)
	return k
}

// signedReq signs a node request with the key of addr and returns its
// wire bytes, as the pipeline carries them.
func signedReq(addr []byte, m proto.Message) []byte {
	v, ok := testNodeKeys.Load(ethcrypto.Address(addr))
	if !ok {
		panic("no test key for node " + ethcrypto.Address(addr).String())
	}
	d, err := truegpuv1.SigningDigest(m)
	if err != nil {
		panic(err)
	}
	sig, err := v.(*ethcrypto.PrivateKey).SignHash(d)
	if err != nil {
		panic(err)
	}
	r := m.ProtoReflect()
	r.Set(r.Descriptor().Fields().ByName(truegpuv1.SignatureField), protoreflect.ValueOfBytes(sig[:]))
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// signCommit fills a commitment command's signed request from the node
// addr.
func signCommit(addr []byte, c *truegpuv1.RecordCommitmentCommand) *truegpuv1.RecordCommitmentCommand {
	c.SignedRequest = signedReq(addr, &truegpuv1.SubmitCommitmentRequest{ChallengeId: truegpuv1.FormatChallengeID(c.ChallengeId),
		Address: ethcrypto.Address(addr).String(), Root: c.Root, TimedRoot: c.TimedRoot, TableRoot: c.TableRoot})
	return c
}

// signWalk fills a walk command's signed request from the node addr.
func signWalk(addr []byte, c *truegpuv1.RecordWalkCommand) *truegpuv1.RecordWalkCommand {
	c.SignedRequest = signedReq(addr, &truegpuv1.SubmitWalkRequest{ChallengeId: truegpuv1.FormatChallengeID(c.ChallengeId),
		Address: ethcrypto.Address(addr).String(), WalkRoot: c.WalkRoot})
	return c
}

// signVerdict fills a verdict's signed request from the node addr: the
// late commitment for COMMITMENT_LATE, the proof submission otherwise.
func signVerdict(addr []byte, v *truegpuv1.VerdictRecord) *truegpuv1.VerdictRecord {
	if v.Reason == string(reputation.ReasonWalkLate) {
		v.SignedRequest = signedReq(addr, &truegpuv1.SubmitWalkRequest{ChallengeId: truegpuv1.FormatChallengeID(v.ChallengeId),
			Address: ethcrypto.Address(addr).String(), WalkRoot: make([]byte, 32)})
		return v
	}
	if v.Reason == string(reputation.ReasonCommitmentLate) {
		v.SignedRequest = signedReq(addr, &truegpuv1.SubmitCommitmentRequest{ChallengeId: truegpuv1.FormatChallengeID(v.ChallengeId),
			Address: ethcrypto.Address(addr).String(), Root: make([]byte, 32)})
		return v
	}
	v.SignedRequest = signedReq(addr, &truegpuv1.SubmitProofRequest{ChallengeId: truegpuv1.FormatChallengeID(v.ChallengeId),
		Address: ethcrypto.Address(addr).String(), Proof: v.Proof, TimedOpenings: v.TimedOpenings, WalkOpenings: v.WalkOpenings})
	return v
}

// TestSignedRequestsCheckedInApply: a commitment or a verdict is recorded
// only with the node's own signed request for that challenge and those
// bytes; a leader cannot record a root, a proof or a late commitment the
// node never sent.
func TestSignedRequestsCheckedInApply(t *testing.T) {
	f := openFSM(t)
	now := int64(1_700_000_000_000)
	mk := func(body any) *truegpuv1.Command { return commandAt(now, body) }
	node, other := nodeKey([]byte("signed node")), nodeKey([]byte("signed other"))
	a, b := node.Address(), other.Address()
	for _, addr := range []ethcrypto.Address{a, b} {
		if err := apply1(t, f, mk(signRegister(&truegpuv1.RegisterNodeCommand{Address: addr[:], Devices: []*truegpuv1.Device{device(0, "GPU-"+addr.String())}}))); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(seed byte) []byte {
		nonce := make([]byte, 32)
		nonce[0] = seed
		id := truegpuv1.ChallengeID(nonce, a[:], 0, now)
		ch := &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000, ProofDeadlineUnixMs: now + 5000, ExpectedLatencyMs: 100}
		if err := apply1(t, f, mk(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}})); err != nil {
			t.Fatal(err)
		}
		return id[:]
	}
	root := make([]byte, 32)
	commit := func(id []byte) *truegpuv1.RecordCommitmentCommand {
		return &truegpuv1.RecordCommitmentCommand{ChallengeId: id, Root: root, ReceivedAtUnixMs: now + 10, SampleSeed: make([]byte, SampleSeedSize)}
	}
	id := issue(1)
	other1 := issue(2)
	forged := []struct {
		name string
		c    *truegpuv1.RecordCommitmentCommand
	}{
		{"no signed request", commit(id)},
		{"signed by another node", func() *truegpuv1.RecordCommitmentCommand {
			c := signCommit(a[:], commit(id))
			c.SignedRequest = nil
			return signCommitAs(b[:], a[:], c)
		}()},
		{"another root", func() *truegpuv1.RecordCommitmentCommand {
			c := signCommit(a[:], commit(id))
			c.Root = bytesOf(9, 32)
			return c
		}()},
		{"another challenge's request", func() *truegpuv1.RecordCommitmentCommand {
			c := commit(id)
			c.SignedRequest = signCommit(a[:], commit(other1)).SignedRequest
			return c
		}()},
		{"garbage bytes", func() *truegpuv1.RecordCommitmentCommand {
			c := commit(id)
			c.SignedRequest = []byte{0xff, 1, 2}
			return c
		}()},
	}
	for _, tc := range forged {
		if err := apply1(t, f, mk(tc.c)); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%s: got %v, want ErrInvalidCommand", tc.name, err)
		}
	}
	if err := apply1(t, f, mk(signCommit(a[:], commit(id)))); err != nil {
		t.Fatalf("the node's own commitment: %v", err)
	}
	accept := func() *truegpuv1.VerdictRecord {
		return &truegpuv1.VerdictRecord{ChallengeId: id, Accepted: true, Proof: []byte{1, 2, 3}, DecidedAtUnixMs: now + 20}
	}
	for name, v := range map[string]*truegpuv1.VerdictRecord{
		"acceptance without the node's request": accept(),
		"acceptance of another proof":           func() *truegpuv1.VerdictRecord { v := signVerdict(a[:], accept()); v.Proof = []byte{4}; return v }(),
		"acceptance signed by another node": func() *truegpuv1.VerdictRecord {
			v := accept()
			v.SignedRequest = signedReq(b[:], &truegpuv1.SubmitProofRequest{ChallengeId: truegpuv1.FormatChallengeID(id), Address: a.String(), Proof: v.Proof})
			return v
		}(),
	} {
		if err := apply1(t, f, mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}})); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%s: got %v, want ErrInvalidCommand", name, err)
		}
	}
	// The proof may travel only inside the signed request, as the
	// pipeline sends it: Apply copies it out and stores the record
	// without the request.
	own := signVerdict(a[:], accept())
	own.Proof = nil
	if err := apply1(t, f, mk(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{own}})); err != nil {
		t.Fatalf("the node's own proof: %v", err)
	}
	cs, err := f.Challenge(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cs.Verdict.GetProof(), []byte{1, 2, 3}) || len(cs.Verdict.GetSignedRequest()) != 0 {
		t.Fatalf("stored verdict: proof %x, %d bytes of signed request; want the signed proof and no request", cs.Verdict.GetProof(), len(cs.Verdict.GetSignedRequest()))
	}

	// Registrations: the node's own request, with the devices it signed.
	fresh := nodeKey([]byte("signed fresh")).Address()
	reg := func() *truegpuv1.RegisterNodeCommand {
		return &truegpuv1.RegisterNodeCommand{Address: fresh[:], Devices: []*truegpuv1.Device{device(0, "GPU-fresh")}}
	}
	for name, c := range map[string]*truegpuv1.RegisterNodeCommand{
		"registration without the node's request": reg(),
		"registration with other devices": func() *truegpuv1.RegisterNodeCommand {
			c := signRegister(reg())
			c.Devices = []*truegpuv1.Device{device(0, "GPU-injected")}
			return c
		}(),
		"registration signed by another node": func() *truegpuv1.RegisterNodeCommand {
			c := reg()
			c.SignedRequest = signedReq(b[:], &truegpuv1.RegisterNodeRequest{Address: fresh.String(), Devices: c.Devices})
			return c
		}(),
	} {
		if err := apply1(t, f, mk(c)); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%s: got %v, want ErrInvalidCommand", name, err)
		}
	}
	if err := apply1(t, f, mk(signRegister(reg()))); err != nil {
		t.Fatalf("the node's own registration: %v", err)
	}
}

// signCommitAs signs c's request for node addr with the key of signer.
func signCommitAs(signer, addr []byte, c *truegpuv1.RecordCommitmentCommand) *truegpuv1.RecordCommitmentCommand {
	c.SignedRequest = signedReq(signer, &truegpuv1.SubmitCommitmentRequest{ChallengeId: truegpuv1.FormatChallengeID(c.ChallengeId),
		Address: ethcrypto.Address(addr).String(), Root: c.Root, TimedRoot: c.TimedRoot})
	return c
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// signRegister fills a registration's signed request from the node it
// names (left empty for an address without a test key, which the test
// expects to be refused anyway).
func signRegister(c *truegpuv1.RegisterNodeCommand) *truegpuv1.RegisterNodeCommand {
	if len(c.Address) != 20 {
		return c
	}
	if _, ok := testNodeKeys.Load(ethcrypto.Address(c.Address)); !ok {
		return c
	}
	c.SignedRequest = signedReq(c.Address, &truegpuv1.RegisterNodeRequest{Address: ethcrypto.Address(c.Address).String(), Devices: c.Devices, TimestampUnixMs: 1})
	return c
}
