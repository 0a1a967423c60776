package devcluster

import (
	"context"
	"errors"
	"fmt"
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
	// Poll is how often a node polls for challenges when the stream is not
	// offered. Default 250ms.
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
		"spoof-h100", "rtx3090-as-h100", "clone-a100-80gb", "clone-a100-80gb", "garbage-h100", "replay-rtx4090", "partial-h100", "grind-h100", "flaky-l40s",
	}}
}

// FleetStats count what the fleet saw.
type FleetStats struct {
	Registered, Challenges, Commitments, Accepted, Rejected, Errors atomic.Int64
}

// Fleet is a running simulated fleet. Every node runs the production
// attestor loop (attest.Agent) over the public gRPC API.
type Fleet struct {
	Nodes []*SimNode
	Stats FleetStats

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*grpc.ClientConn
}

// SimNode is one simulated node.
type SimNode struct {
	Kind   string
	Key    *attest.NodeKey
	Device attest.Device
}

// StartFleet creates the fleet's nodes and starts their attestors against
// the cluster's members (spread over all of them; followers forward writes
// to the leader).
func StartFleet(ctx context.Context, c *Cluster, o FleetOptions) (*Fleet, error) {
	if len(o.HonestClasses) == 0 {
		o.HonestClasses = []string{"h100", "a100", "rtx4090", "l40s"}
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	f := &Fleet{}
	groups := map[string]*sim.CloneGroup{}
	add := func(kind string, i int) error {
		seed := []byte(fmt.Sprintf("truegpu dev node %d %s", i, kind))
		key := attest.NodeKeyFromSeed(seed)
		opts := sim.Options{Seed: seed, TimeScale: o.TimeScale, Node: key.ProverAddress()}
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
			dev, err = sim.New(kind, opts)
		}
		if err != nil {
			return fmt.Errorf("devcluster: fleet device %q: %w", kind, err)
		}
		f.Nodes = append(f.Nodes, &SimNode{Kind: kind, Key: key, Device: dev})
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
	keys := func(p *prover.Profile) (*prover.ProvingKey, error) {
		if p.Digest() != c.Profile.Digest() {
			return nil, fmt.Errorf("devcluster: the fleet holds keys for %s only, not %s", c.Profile.ID(), p.ID())
		}
		return c.ProvingKey, nil
	}
	// One proving slot for the whole fleet, so simulated nodes sharing the
	// host's cores with the cluster do not starve Raft.
	proving := make(chan struct{}, 1)
	var agents []*attest.Agent
	for i, n := range f.Nodes {
		a, err := attest.NewAgent(ctx, attest.AgentConfig{
			Client: clients[i%len(clients)], Key: n.Key, Devices: []attest.AgentDevice{{Device: n.Device}},
			Keys: keys, ProveSlots: proving, PollInterval: o.Poll, MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
			Logger:       c.opts.Logger.With("node", n.Key.Address().String(), "kind", n.Kind),
			OnRegistered: func(*truegpuv1.RegisterNodeResponse) { f.Stats.Registered.Add(1) },
			OnOutcome:    f.count,
		})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("devcluster: fleet node %s: %w", n.Kind, err)
		}
		agents = append(agents, a)
	}
	var fctx context.Context
	fctx, f.cancel = context.WithCancel(context.Background())
	for _, a := range agents {
		f.wg.Go(func() { a.Run(fctx) })
	}
	return f, nil
}

// count adds one answered challenge to the statistics.
func (f *Fleet) count(out *attest.Outcome, err error) {
	f.Stats.Challenges.Add(1)
	if out != nil && out.Commitment.GetAccepted() {
		f.Stats.Commitments.Add(1)
	}
	switch {
	case out != nil && out.Verdict != nil && out.Verdict.GetAccepted():
		f.Stats.Accepted.Add(1)
	case out != nil && out.Verdict != nil, out != nil && out.Commitment != nil && !out.Commitment.GetAccepted():
		f.Stats.Rejected.Add(1)
	case err != nil && !errors.Is(err, context.Canceled):
		f.Stats.Errors.Add(1)
	}
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
