package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/sim"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// FleetOptions configure the simulated fleet.
type FleetOptions struct {
	// Honest is the number of honest nodes, one device each, cycling
	// through HonestClasses.
	Honest int
	// HonestClasses are sim device profiles of honest nodes. Default
	// h100, a100, rtx4090, l40s.
	HonestClasses []string
	// Adversaries are sim device profiles of adversarial nodes, one node
	// each, e.g. "spoof-h100", "rtx3090-as-h100", "garbage-h100",
	// "replay-rtx4090", "partial-h100". "clone-<class>" entries with the
	// same class share one GPU and one identity.
	Adversaries []string
	// Poll is how often nodes poll for challenges. Default 250ms.
	Poll time.Duration
	// TimeScale multiplies every simulated device's modelled run time
	// (sim.Options.TimeScale); 0 means 1. On the small test and demo
	// profiles every class finishes in microseconds, far inside the
	// deadline's fixed slack; DefaultTimeScale stretches modelled times so
	// that the gap between a GPU and a CPU shows as it does on the standard
	// profile (a CPU pretending to be a GPU misses the deadline, a GPU
	// takes milliseconds).
	TimeScale float64
}

// DefaultTimeScale is the TimeScale of DefaultFleet: a CPU's modelled time
// on the test profile (about 1.3 ms) becomes about 1.3 s, past the ~1 s
// commitment deadline of every GPU class, while GPU classes stay at a few
// milliseconds.
const DefaultTimeScale = 1000

func (o FleetOptions) total() int { return o.Honest + len(o.Adversaries) }

// DefaultFleet is the fleet `oracled dev` runs: honest nodes of several
// classes and one of each adversarial kind (two clones of one GPU).
func DefaultFleet() FleetOptions {
	return FleetOptions{Honest: 8, TimeScale: DefaultTimeScale, Adversaries: []string{
		"spoof-h100", "rtx3090-as-h100", "clone-a100-80gb", "clone-a100-80gb", "garbage-h100", "replay-rtx4090", "partial-h100", "flaky-l40s",
	}}
}

// FleetStats count what the fleet saw.
type FleetStats struct {
	Registered, Challenges, Commitments, Accepted, Rejected, Errors atomic.Int64
}

// Fleet is a running simulated fleet.
type Fleet struct {
	Nodes []*SimNode
	Stats FleetStats

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*grpc.ClientConn
	// proving serializes Groth16 proving across the fleet, so simulated
	// nodes sharing the host's cores with the cluster do not starve Raft.
	proving chan struct{}
}

// SimNode is one simulated node.
type SimNode struct {
	Kind   string
	Key    *attest.NodeKey
	Device attest.Device
	class  string
}

// StartFleet creates the fleet's nodes and starts their attestor loops
// against the cluster's members (spread over all of them; followers
// forward writes to the leader).
func StartFleet(ctx context.Context, c *Cluster, o FleetOptions) (*Fleet, error) {
	if len(o.HonestClasses) == 0 {
		o.HonestClasses = []string{"h100", "a100", "rtx4090", "l40s"}
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	f := &Fleet{proving: make(chan struct{}, 1)}
	groups := map[string]*sim.CloneGroup{}
	add := func(kind string, i int) error {
		seed := []byte(fmt.Sprintf("truegpu dev node %d %s", i, kind))
		var dev attest.Device
		var err error
		if len(kind) > 6 && kind[:6] == "clone-" {
			g := groups[kind]
			if g == nil {
				if g, err = sim.NewCloneGroup(kind[6:], sim.Options{Seed: []byte(kind), TimeScale: o.TimeScale}); err != nil {
					return err
				}
				groups[kind] = g
			}
			dev, err = g.Device()
		} else {
			dev, err = sim.New(kind, sim.Options{Seed: seed, TimeScale: o.TimeScale})
		}
		if err != nil {
			return fmt.Errorf("devcluster: fleet device %q: %w", kind, err)
		}
		n := &SimNode{Kind: kind, Key: attest.NodeKeyFromSeed(seed), Device: dev}
		if cc, ok := dev.(attest.ClassClaimer); ok {
			n.class = cc.ClaimedClass()
		}
		f.Nodes = append(f.Nodes, n)
		return nil
	}
	for i := range o.Honest {
		if err := add(o.HonestClasses[i%len(o.HonestClasses)], i); err != nil {
			return nil, err
		}
	}
	for i, k := range o.Adversaries {
		if err := add(k, o.Honest+i); err != nil {
			return nil, err
		}
	}
	var clients []truegpuv1.NodeServiceClient
	for _, n := range c.Nodes {
		cc, err := grpc.NewClient(n.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			f.Close()
			return nil, err
		}
		f.conns = append(f.conns, cc)
		clients = append(clients, truegpuv1.NewNodeServiceClient(cc))
	}
	var fctx context.Context
	fctx, f.cancel = context.WithCancel(context.Background())
	for i, n := range f.Nodes {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			a := &agent{f: f, n: n, cl: clients[i%len(clients)], p: c.Profile, pk: c.ProvingKey, poll: o.Poll, log: c.opts.Logger.With("node", n.Key.Address().String(), "kind", n.Kind)}
			a.run(fctx)
		}()
	}
	return f, nil
}

// Close stops the fleet.
func (f *Fleet) Close() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, cc := range f.conns {
		cc.Close()
	}
	for _, n := range f.Nodes {
		n.Device.Close()
	}
}

// agent is a minimal attestor loop over the public gRPC API: register,
// poll for challenges, run, commit, prove, submit.
type agent struct {
	f    *Fleet
	n    *SimNode
	cl   truegpuv1.NodeServiceClient
	p    *prover.Profile
	pk   *prover.ProvingKey
	poll time.Duration
	log  *slog.Logger
	seen map[string]bool
}

func (a *agent) run(ctx context.Context) {
	a.seen = map[string]bool{}
	for ctx.Err() == nil {
		if err := a.register(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			a.log.Debug("register", "err", err)
			sleep(ctx, time.Second)
		}
	}
	a.f.Stats.Registered.Add(1)
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		req := &truegpuv1.PollChallengesRequest{Address: a.n.Key.Address().String(), TimestampUnixMs: time.Now().UnixMilli()}
		if err := a.n.Key.Sign(req); err != nil {
			return
		}
		resp, err := a.cl.PollChallenges(ctx, req)
		if err != nil {
			continue
		}
		for _, ch := range resp.Challenges {
			if a.seen[ch.ChallengeId] {
				continue
			}
			a.seen[ch.ChallengeId] = true
			a.f.Stats.Challenges.Add(1)
			go a.answer(ctx, ch)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (a *agent) register(ctx context.Context) error {
	fp, err := a.n.Device.Fingerprint(ctx)
	if err != nil {
		return err
	}
	class := a.n.class
	if class == "" {
		class = "H100-SXM"
	}
	req := &truegpuv1.RegisterNodeRequest{Address: a.n.Key.Address().String(), TimestampUnixMs: time.Now().UnixMilli(),
		Devices: []*truegpuv1.Device{{Index: 0, ClaimedClass: class, Fingerprint: fp.Proto()}}}
	if err := a.n.Key.Sign(req); err != nil {
		return err
	}
	_, err = a.cl.RegisterNode(ctx, req)
	return err
}

func (a *agent) answer(ctx context.Context, ch *truegpuv1.Challenge) {
	w := attest.Workload{Profile: a.p, Nonce: prover.Nonce(ch.Nonce)}
	rctx, cancel := context.WithDeadline(ctx, time.UnixMilli(ch.CommitDeadlineUnixMs).Add(5*time.Second))
	defer cancel()
	com, err := a.n.Device.Run(rctx, w)
	if err != nil {
		if ctx.Err() == nil {
			a.f.Stats.Errors.Add(1)
		}
		return
	}
	creq := &truegpuv1.SubmitCommitmentRequest{ChallengeId: ch.ChallengeId, Address: a.n.Key.Address().String(), Root: com.Root[:], DeviceElapsedMs: uint64(com.Elapsed.Milliseconds())}
	if err := a.n.Key.Sign(creq); err != nil {
		return
	}
	cresp, err := a.cl.SubmitCommitment(ctx, creq)
	if err != nil || !cresp.Accepted {
		if err != nil {
			a.f.Stats.Errors.Add(1)
		} else {
			a.f.Stats.Rejected.Add(1)
		}
		return
	}
	a.f.Stats.Commitments.Add(1)
	node := a.n.Key.ProverAddress()
	honest := func(context.Context) ([]byte, error) {
		cells, err := a.n.Device.Results(w.Nonce)
		if err != nil {
			return nil, err
		}
		select {
		case a.f.proving <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-a.f.proving }()
		proof, _, err := prover.Prove(a.pk, a.p, w.Nonce, node, cells)
		return proof, err
	}
	var proof []byte
	if ps, ok := a.n.Device.(attest.ProofSource); ok {
		proof, err = ps.Proof(ctx, w, node, honest)
	} else {
		proof, err = honest(ctx)
	}
	if err != nil {
		// A device whose results do not match its root cannot prove: it
		// sends what it has (nothing) and the challenge expires.
		if !errors.Is(err, context.Canceled) {
			a.log.Debug("prove", "err", err)
		}
		return
	}
	preq := &truegpuv1.SubmitProofRequest{ChallengeId: ch.ChallengeId, Address: a.n.Key.Address().String(), Proof: proof}
	if err := a.n.Key.Sign(preq); err != nil {
		return
	}
	presp, err := a.cl.SubmitProof(ctx, preq)
	switch {
	case err != nil:
		a.f.Stats.Errors.Add(1)
	case presp.Verdict.GetAccepted():
		a.f.Stats.Accepted.Add(1)
	default:
		a.f.Stats.Rejected.Add(1)
	}
}
