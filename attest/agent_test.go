package attest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/cpu"
	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// oracleDouble is an in-process NodeService that checks what a real oracle
// checks of an attestor (signatures, deadlines, proofs with the real
// verifier) so that the agent loop can be tested without a cluster. The
// end-to-end test against oracled lives with the oracle.
type oracleDouble struct {
	truegpuv1.UnimplementedNodeServiceServer
	t  *testing.T
	p  *prover.Profile
	vk *verifier.VerifyingKey

	mu          sync.Mutex
	registered  map[string]*truegpuv1.RegisterNodeRequest
	challenges  map[string]*truegpuv1.Challenge
	roots       map[string][32]byte
	seeds       map[string]prover.SampleSeed
	noSeed      bool                   // answer commitments without a sample seed
	pending     []*truegpuv1.Challenge // returned by polls until committed
	streams     chan *truegpuv1.Challenge
	dropStreams int // fail this many stream openings with Unavailable
	opened      int
	commits     map[string]int
	verdicts    []*truegpuv1.Verdict
}

func newOracleDouble(t *testing.T, p *prover.Profile, vk *verifier.VerifyingKey) *oracleDouble {
	return &oracleDouble{t: t, p: p, vk: vk,
		registered: map[string]*truegpuv1.RegisterNodeRequest{},
		challenges: map[string]*truegpuv1.Challenge{},
		roots:      map[string][32]byte{},
		seeds:      map[string]prover.SampleSeed{},
		commits:    map[string]int{},
		streams:    make(chan *truegpuv1.Challenge, 16),
	}
}

// signed is a request of the node API that carries an address.
type signed interface {
	proto.Message
	GetAddress() string
}

func (o *oracleDouble) verify(m signed) error {
	addr, err := ethcrypto.ParseAddress(m.GetAddress())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ok, err := attest.VerifySignature(m, addr)
	if err != nil || !ok {
		return status.Errorf(codes.Unauthenticated, "bad signature (%v)", err)
	}
	return nil
}

func (o *oracleDouble) RegisterNode(ctx context.Context, req *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	if err := o.verify(req); err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.registered[req.GetAddress()] = req
	o.mu.Unlock()
	return &truegpuv1.RegisterNodeResponse{Address: req.GetAddress(), Status: truegpuv1.NodeStatus_NODE_STATUS_PROBATION}, nil
}

func (o *oracleDouble) StreamChallenges(req *truegpuv1.StreamChallengesRequest, srv grpc.ServerStreamingServer[truegpuv1.StreamChallengesResponse]) error {
	if err := o.verify(req); err != nil {
		return err
	}
	o.mu.Lock()
	o.opened++
	drop := o.dropStreams > 0
	if drop {
		o.dropStreams--
	}
	o.mu.Unlock()
	if drop {
		return status.Error(codes.Unavailable, "leader changed")
	}
	for {
		select {
		case <-srv.Context().Done():
			return srv.Context().Err()
		case ch := <-o.streams:
			if err := srv.Send(&truegpuv1.StreamChallengesResponse{Challenge: ch}); err != nil {
				return err
			}
		}
	}
}

func (o *oracleDouble) PollChallenges(ctx context.Context, req *truegpuv1.PollChallengesRequest) (*truegpuv1.PollChallengesResponse, error) {
	if err := o.verify(req); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return &truegpuv1.PollChallengesResponse{Challenges: append([]*truegpuv1.Challenge(nil), o.pending...)}, nil
}

func (o *oracleDouble) SubmitCommitment(ctx context.Context, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	if err := o.verify(req); err != nil {
		return nil, err
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	ch, ok := o.challenges[req.GetChallengeId()]
	if !ok || ch.GetAddress() != req.GetAddress() {
		return nil, status.Error(codes.NotFound, "no such challenge")
	}
	o.commits[req.GetChallengeId()]++
	if now.UnixMilli() > ch.GetCommitDeadlineUnixMs() {
		return &truegpuv1.SubmitCommitmentResponse{Accepted: false, Reason: "DEADLINE_MISSED"}, nil
	}
	if r, ok := o.roots[req.GetChallengeId()]; ok && r == [32]byte(req.GetRoot()) {
		seed := o.seeds[req.GetChallengeId()]
		return &truegpuv1.SubmitCommitmentResponse{Accepted: true, SampleSeed: seed[:]}, nil
	}
	o.roots[req.GetChallengeId()] = [32]byte(req.GetRoot())
	var seed prover.SampleSeed
	rand.Read(seed[:])
	o.seeds[req.GetChallengeId()] = seed
	for i, p := range o.pending {
		if p.GetChallengeId() == req.GetChallengeId() {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			break
		}
	}
	resp := &truegpuv1.SubmitCommitmentResponse{Accepted: true, ReceivedAtUnixMs: now.UnixMilli(), ProofDeadlineUnixMs: ch.GetProofDeadlineUnixMs(), SampleSeed: seed[:]}
	if o.noSeed {
		resp.SampleSeed = nil
	}
	return resp, nil
}

func (o *oracleDouble) SubmitProof(ctx context.Context, req *truegpuv1.SubmitProofRequest) (*truegpuv1.SubmitProofResponse, error) {
	if err := o.verify(req); err != nil {
		return nil, err
	}
	o.mu.Lock()
	ch, ok := o.challenges[req.GetChallengeId()]
	root, committed := o.roots[req.GetChallengeId()]
	seed := o.seeds[req.GetChallengeId()]
	o.mu.Unlock()
	if !ok || !committed {
		return nil, status.Error(codes.FailedPrecondition, "not committed")
	}
	addr, _ := ethcrypto.ParseAddress(req.GetAddress())
	v := &truegpuv1.Verdict{ChallengeId: req.GetChallengeId(), Address: req.GetAddress(), Accepted: true}
	pub, err := o.p.PublicInputs(prover.Nonce(ch.GetNonce()), prover.Address(addr), root, seed)
	if err == nil {
		var proof *verifier.Proof
		if proof, err = verifier.DecodeProof(req.GetProof()); err == nil {
			err = verifier.Verify(o.vk, proof, pub)
		}
	}
	if err != nil {
		v.Accepted, v.Reason, v.Detail = false, "PROOF_INVALID", err.Error()
	}
	o.mu.Lock()
	o.verdicts = append(o.verdicts, v)
	o.mu.Unlock()
	return &truegpuv1.SubmitProofResponse{Verdict: v}, nil
}

var nextNonce byte

// issue creates a challenge; viaStream sends it on the stream, otherwise
// it is only visible to polls.
func (o *oracleDouble) issue(addr string, device uint32, uuid string, deadline time.Duration, viaStream bool) *truegpuv1.Challenge {
	o.mu.Lock()
	nextNonce++
	var nonce [32]byte
	nonce[0], nonce[31] = 0xAB, nextNonce
	a, _ := ethcrypto.ParseAddress(addr)
	id := truegpuv1.ChallengeID(nonce[:], a[:], device, time.Now().UnixMilli())
	d := o.p.Digest()
	now := time.Now()
	ch := &truegpuv1.Challenge{
		ChallengeId: "0x" + hex.EncodeToString(id[:]), Address: addr, DeviceIndex: device, DeviceUuid: uuid,
		Nonce:          nonce[:],
		Params:         &truegpuv1.WorkloadParams{Profile: o.p.ID(), M: uint32(o.p.M), N: uint32(o.p.N), K: uint32(o.p.K), Samples: uint32(o.p.Q), ParamsDigest: d[:]},
		IssuedAtUnixMs: now.UnixMilli(), CommitDeadlineUnixMs: now.Add(deadline).UnixMilli(),
		ProofDeadlineUnixMs: now.Add(time.Minute).UnixMilli(),
	}
	o.challenges[ch.ChallengeId] = ch
	o.pending = append(o.pending, ch)
	o.mu.Unlock()
	if viaStream {
		o.streams <- ch
	}
	return ch
}

// fixture is a running oracle double and a client connection to it.
type fixture struct {
	oracle *oracleDouble
	client truegpuv1.NodeServiceClient
	keys   attest.KeySource
}

func testKeys(t *testing.T, p *prover.Profile) (*prover.ProvingKey, *verifier.VerifyingKey) {
	t.Helper()
	pk, vk, err := prover.UnsafeDevKeys(p, "") // set up once per process and profile
	if err != nil {
		t.Fatalf("dev setup: %v", err)
	}
	return pk, vk
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	pk, vk := testKeys(t, p)
	o := newOracleDouble(t, p, vk)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	truegpuv1.RegisterNodeServiceServer(srv, o)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fixture{oracle: o, client: truegpuv1.NewNodeServiceClient(conn),
		keys: func(*prover.Profile) (*prover.ProvingKey, error) { return pk, nil }}
}

// agent returns an agent for devs, each with its simulated prove hook
// (sim.AgentDevice; nil for devices that prove honestly).
func (f *fixture) agent(t *testing.T, seed string, devs ...attest.Device) *attest.Agent {
	t.Helper()
	var ads []attest.AgentDevice
	for _, d := range devs {
		ads = append(ads, sim.AgentDevice(d))
	}
	return f.agentOf(t, seed, ads...)
}

func (f *fixture) agentOf(t *testing.T, seed string, ads ...attest.AgentDevice) *attest.Agent {
	t.Helper()
	a, err := attest.NewAgent(context.Background(), attest.AgentConfig{
		Client: f.client, Key: attest.NodeKeyFromSeed([]byte(seed)), Devices: ads, Keys: f.keys,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ShutdownGrace: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func uuidOf(t *testing.T, d attest.Device) string {
	fp, err := d.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fp.UUID
}

// The whole loop against the oracle double: register, a challenge over the
// stream, a dropped stream and reconnect, a challenge picked up by the
// poll after reconnecting, both proofs accepted by the real verifier.
func TestAgentRunEndToEnd(t *testing.T) {
	f := newFixture(t)
	dev := cpu.New(cpu.Options{Seed: []byte("agent-e2e")})
	a := f.agent(t, "node-e2e", dev)
	verdicts := make(chan *truegpuv1.Verdict, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.oracle.mu.Lock()
	f.oracle.dropStreams = 2
	f.oracle.mu.Unlock()
	// Issued before the agent connects: only a poll can find it.
	f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 20*time.Second, false)
	done := make(chan error, 1)
	go func() { done <- runWithVerdicts(ctx, a, f, verdicts) }()
	f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 20*time.Second, true)
	for i := range 2 {
		select {
		case v := <-verdicts:
			if !v.GetAccepted() {
				t.Errorf("verdict %d rejected: %s %s", i, v.GetReason(), v.GetDetail())
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no verdict within a minute")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	f.oracle.mu.Lock()
	defer f.oracle.mu.Unlock()
	if f.oracle.opened < 3 {
		t.Errorf("stream opened %d times, want at least 3 (two dropped)", f.oracle.opened)
	}
	reg, ok := f.oracle.registered[a.Address()]
	if !ok || len(reg.GetDevices()) != 1 || reg.GetDevices()[0].GetClaimedClass() != gpuclass.CPU {
		t.Errorf("registration %v", reg)
	}
	for id, n := range f.oracle.commits {
		if n != 1 {
			t.Errorf("challenge %s committed %d times", id, n)
		}
	}
}

// runWithVerdicts runs the agent, forwarding verdicts the double records.
func runWithVerdicts(ctx context.Context, a *attest.Agent, f *fixture, out chan<- *truegpuv1.Verdict) error {
	go func() {
		seen := 0
		for ctx.Err() == nil {
			f.oracle.mu.Lock()
			vs := append([]*truegpuv1.Verdict(nil), f.oracle.verdicts...)
			f.oracle.mu.Unlock()
			for ; seen < len(vs); seen++ {
				out <- vs[seen]
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return a.Run(ctx)
}

func TestAgentHandle(t *testing.T) {
	f := newFixture(t)
	mk := func(profile string) attest.Device {
		d, err := sim.New(profile, sim.Options{Seed: []byte(profile)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name       string
		dev        attest.Device
		rounds     int
		deadline   time.Duration
		wantErr    []error // per round; nil = success
		wantAccept []bool
	}{
		{"honest h100", mk("h100"), 1, 10 * time.Second, []error{nil}, []bool{true}},
		{"garbage", mk("garbage-h100"), 1, 10 * time.Second, []error{nil}, []bool{false}},
		{"replay", mk("replay-a100"), 2, 10 * time.Second, []error{nil, nil}, []bool{true, false}},
		{"partial computes nothing", func() attest.Device {
			d, _ := sim.NewPartial(gpuclass.H100SXM, sim.Options{Percent: 1})
			return d
		}(), 1, 10 * time.Second, []error{prover.ErrWrongResult}, nil},
		{"spoofer misses a tight deadline", func() attest.Device {
			d, _ := sim.NewSpoofer(gpuclass.H100SXM, sim.Options{TimeScale: 200})
			return d
		}(), 1, 100 * time.Millisecond, []error{attest.ErrCommitmentRejected}, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := f.agent(t, fmt.Sprintf("node-%d", i), tc.dev)
			if _, err := a.Register(context.Background()); err != nil {
				t.Fatal(err)
			}
			for r := range tc.rounds {
				ch := f.oracle.issue(a.Address(), 0, uuidOf(t, tc.dev), tc.deadline, false)
				out, err := a.Handle(context.Background(), ch)
				if want := tc.wantErr[r]; want != nil {
					if !errors.Is(err, want) {
						t.Fatalf("round %d: error %v, want %v", r, err, want)
					}
					continue
				}
				if err != nil {
					t.Fatalf("round %d: %v", r, err)
				}
				if got := out.Verdict.GetAccepted(); got != tc.wantAccept[r] {
					t.Fatalf("round %d: accepted %v (%s), want %v", r, got, out.Verdict.GetDetail(), tc.wantAccept[r])
				}
			}
		})
	}
}

// TestAgentProveHook covers AgentDevice.Prove: the hook is handed the
// committed workload, root, sample seed and the node's prover address, and
// what it returns is submitted; an error from it submits nothing; and a
// device without a hook gets the honest prover whatever its type (a
// Garbage device, whose own proofs come only through its hook, then has
// no results to prove from).
func TestAgentProveHook(t *testing.T) {
	f := newFixture(t)
	t.Run("wraps the honest proof", func(t *testing.T) {
		dev, err := sim.New("h100", sim.Options{Seed: []byte("hook")})
		if err != nil {
			t.Fatal(err)
		}
		var calls int
		var got attest.Sampling
		var gotW attest.Workload
		var gotNode prover.Address
		a := f.agentOf(t, "hook-node", attest.AgentDevice{Device: dev, Prove: func(ctx context.Context, w attest.Workload, s attest.Sampling, node prover.Address, honest func(context.Context) ([]byte, error)) ([]byte, error) {
			calls++
			gotW, got, gotNode = w, s, node
			return honest(ctx)
		}})
		if _, err := a.Register(context.Background()); err != nil {
			t.Fatal(err)
		}
		ch := f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 10*time.Second, false)
		out, err := a.Handle(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Verdict.GetAccepted() {
			t.Fatalf("verdict rejected: %s", out.Verdict.GetDetail())
		}
		want := attest.NodeKeyFromSeed([]byte("hook-node")).ProverAddress()
		if calls != 1 || got.Root != out.Root || got.Seed == (prover.SampleSeed{}) || gotNode != want || !bytes.Equal(gotW.Nonce[:], ch.GetNonce()) {
			t.Fatalf("hook called %d times with root %x seed %x node %x nonce %x; want once with root %x, a seed, node %x, nonce %x",
				calls, got.Root[:4], got.Seed[:4], gotNode[:4], gotW.Nonce[:4], out.Root[:4], want[:4], ch.GetNonce()[:4])
		}
	})
	t.Run("an error submits nothing", func(t *testing.T) {
		dev, err := sim.New("h100", sim.Options{Seed: []byte("hook error")})
		if err != nil {
			t.Fatal(err)
		}
		refused := errors.New("declined")
		a := f.agentOf(t, "hook-error-node", attest.AgentDevice{Device: dev, Prove: func(context.Context, attest.Workload, attest.Sampling, prover.Address, func(context.Context) ([]byte, error)) ([]byte, error) {
			return nil, refused
		}})
		if _, err := a.Register(context.Background()); err != nil {
			t.Fatal(err)
		}
		out, err := a.Handle(context.Background(), f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 10*time.Second, false))
		if !errors.Is(err, refused) || out.Verdict != nil {
			t.Fatalf("Handle: %v, verdict %v; want the hook's error and no verdict", err, out.Verdict)
		}
	})
	t.Run("no hook proves honestly", func(t *testing.T) {
		dev, err := sim.New("garbage-h100", sim.Options{Seed: []byte("hookless garbage")})
		if err != nil {
			t.Fatal(err)
		}
		if sim.ProveHook(dev) == nil {
			t.Fatal("sim.ProveHook: no hook for a Garbage device")
		}
		a := f.agentOf(t, "hookless-node", attest.AgentDevice{Device: dev})
		if _, err := a.Register(context.Background()); err != nil {
			t.Fatal(err)
		}
		out, err := a.Handle(context.Background(), f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 10*time.Second, false))
		if !errors.Is(err, attest.ErrNoResults) || out.Verdict != nil {
			t.Fatalf("Handle: %v, verdict %v; want ErrNoResults from the honest prover and no verdict", err, out.Verdict)
		}
	})
}

// TestAgentSampleSeed covers the sample seed's paths through the agent: an
// oracle that answers a commitment without a seed is refused with a clear
// error, and a committed challenge seen again (root and seed in the view,
// as a poll returns it after a lost answer) is proven from the held
// results without running again.
func TestAgentSampleSeed(t *testing.T) {
	f := newFixture(t)
	dev, err := sim.New("h100", sim.Options{Seed: []byte("seed test")})
	if err != nil {
		t.Fatal(err)
	}
	a := f.agent(t, "seed-node", dev)
	if _, err := a.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.oracle.mu.Lock()
	f.oracle.noSeed = true
	f.oracle.mu.Unlock()
	ch := f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 10*time.Second, false)
	if _, err := a.Handle(context.Background(), ch); !errors.Is(err, attest.ErrBadChallenge) || !strings.Contains(err.Error(), "sample seed") {
		t.Fatalf("commitment answered without a seed: %v, want ErrBadChallenge naming the sample seed", err)
	}

	// The oracle recorded the root and drew a seed; the node resumes.
	f.oracle.mu.Lock()
	f.oracle.noSeed = false
	root, seed := f.oracle.roots[ch.GetChallengeId()], f.oracle.seeds[ch.GetChallengeId()]
	f.oracle.mu.Unlock()
	resumed := proto.Clone(ch).(*truegpuv1.Challenge)
	resumed.Root, resumed.SampleSeed = root[:], seed[:]
	out, err := a.Handle(context.Background(), resumed)
	if err != nil || !out.Verdict.GetAccepted() {
		t.Fatalf("resumed challenge: %v, %v", out.Verdict, err)
	}
	if n := f.oracle.commits[ch.GetChallengeId()]; n != 1 {
		t.Fatalf("resuming committed again (%d commitments)", n)
	}

	// A resumed challenge whose results the device no longer holds fails
	// clearly instead of proving something else.
	other := f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 10*time.Second, false)
	other.Root, other.SampleSeed = root[:], seed[:]
	other.Nonce = bytes.Repeat([]byte{0xee}, 32)
	if _, err := a.Handle(context.Background(), other); err == nil || !strings.Contains(err.Error(), "results are gone") {
		t.Fatalf("resume without results: %v", err)
	}
}

func TestAgentRejectsBadChallenges(t *testing.T) {
	f := newFixture(t)
	dev := cpu.New(cpu.Options{Seed: []byte("bad")})
	a := f.agent(t, "node-bad", dev)
	good := func() *truegpuv1.Challenge {
		return f.oracle.issue(a.Address(), 0, uuidOf(t, dev), 10*time.Second, false)
	}
	tests := []struct {
		name   string
		mutate func(*truegpuv1.Challenge)
	}{
		{"other node", func(c *truegpuv1.Challenge) { c.Address = "0x0000000000000000000000000000000000000001" }},
		{"device index", func(c *truegpuv1.Challenge) { c.DeviceIndex = 3 }},
		{"device uuid", func(c *truegpuv1.Challenge) { c.DeviceUuid = "GPU-other" }},
		{"short nonce", func(c *truegpuv1.Challenge) { c.Nonce = c.Nonce[:31] }},
		{"no params", func(c *truegpuv1.Challenge) { c.Params = nil }},
		{"unknown profile", func(c *truegpuv1.Challenge) { c.Params.Profile = "huge/v1" }},
		{"newer version", func(c *truegpuv1.Challenge) { c.Params.Profile = "test/v9" }},
		{"dims differ", func(c *truegpuv1.Challenge) { c.Params.K++ }},
		{"digest differs", func(c *truegpuv1.Challenge) { c.Params.ParamsDigest = make([]byte, 32) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := proto.Clone(good()).(*truegpuv1.Challenge)
			tc.mutate(ch)
			if _, err := a.Handle(context.Background(), ch); !errors.Is(err, attest.ErrBadChallenge) {
				t.Fatalf("Handle error = %v, want ErrBadChallenge", err)
			}
		})
	}
}

func TestAgentConfigValidate(t *testing.T) {
	err := (&attest.AgentConfig{MinBackoff: time.Second, MaxBackoff: time.Millisecond,
		Devices: []attest.AgentDevice{{Class: "B300"}}}).Validate()
	for _, want := range []string{"no oracle client", "no node key", "device 0 is nil", "B300", "no proving key source", "not ordered"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	_, err = attest.NewAgent(context.Background(), attest.AgentConfig{
		Client: truegpuv1.NewNodeServiceClient(nil), Key: attest.NodeKeyFromSeed([]byte("x")),
		Devices: []attest.AgentDevice{{Device: unknownNameDevice{cpu.New(cpu.Options{})}}},
		Keys:    attest.DevKeys(),
	})
	if !errors.Is(err, attest.ErrUnknownClass) {
		t.Errorf("NewAgent with an unclassifiable device: %v, want ErrUnknownClass", err)
	}
}

// unknownNameDevice hides the CPU device's class claim: its ClaimedClass
// has the wrong signature, so it is not an attest.ClassClaimer.
type unknownNameDevice struct{ *cpu.Device }

func (unknownNameDevice) ClaimedClass() {}
