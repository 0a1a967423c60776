package devcluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

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
	// Nodes are sim device profiles of further nodes, one node each, in
	// order, after the honest and adversarial ones: an exact list such as
	// "h100", "rtx3090-as-h100", "cpu-128-as-H200". Besides sim.New's
	// profiles it takes "relay-<actual>[-as-<claimed>]" (an identity of a
	// sim.RelayGroup), "copy-<profile>" (the device of <profile> presenting
	// the fingerprint of an earlier honest node of the class it claims:
	// an identity copier) and a suffix "@<group>" on clone- and relay-
	// profiles: entries with the same profile and group share one device.
	Nodes []string
	// Delays, when set, holds one start delay per entry of Nodes: the node
	// registers that long after the fleet starts (a late joiner).
	Delays []time.Duration
	// Jitter, when set, delays every call a node makes to the cluster as a
	// wide-area link would (see JitterModel). Nil: loopback latency.
	Jitter *JitterModel
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

func (o FleetOptions) total() int { return o.Honest + len(o.Adversaries) + len(o.Nodes) }

// DefaultFleet is the fleet `oracled dev` runs: honest nodes of several
// classes and one of each adversarial kind (two clones of one GPU).
func DefaultFleet() FleetOptions {
	return FleetOptions{Honest: 8, TimeScale: DefaultTimeScale, Adversaries: []string{
		"spoof-h100", "rtx3090-as-h100", "a100-40gb-as-a100-80gb", "h100-pcie-as-h100", "clone-a100-80gb", "clone-a100-80gb", "garbage-h100", "replay-rtx4090",
		"partial-h100", "grind-h100", "flaky-l40s",
	}}
}

// FleetLabel is the profiler label key on every goroutine of a fleet's
// nodes (value "fleet"): CPU profile samples without it are the cluster's.
const FleetLabel = "truegpu-side"

// FleetStats count what the fleet saw.
type FleetStats struct {
	Registered, Challenges, Commitments, Accepted, Rejected, Errors atomic.Int64
}

// Fleet is a running simulated fleet. Every node runs the production
// attestor loop (attest.Agent) over the public gRPC API; adversaries that
// make their own proofs plug in through the agent's prove hook
// (attest.AgentDevice.Prove), and Stats are counted from the agent's
// OnRegistered and OnOutcome hooks.
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
	// Prove is the device's prove hook (sim.ProveHook): set for the
	// adversaries that make their own proofs, nil for devices that prove
	// honestly.
	Prove attest.ProveFunc
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
	var jitter JitterModel
	if o.Jitter != nil {
		var err error
		if jitter, err = o.Jitter.withDefaults(); err != nil {
			return nil, err
		}
	}
	f := &Fleet{}
	groups := map[string]*sim.CloneGroup{}
	relays := map[string]*sim.RelayGroup{}
	victims := map[string][]attest.Fingerprint{} // honest fingerprints by claimed class, for copiers
	copied := map[string]int{}
	add := func(kind string, i int) error {
		seed := []byte(fmt.Sprintf("truegpu dev node %d %s", i, kind))
		key := attest.NodeKeyFromSeed(seed)
		opts := sim.Options{Seed: seed, TimeScale: o.TimeScale, Node: key.ProverAddress()}
		profile, group, grouped := strings.Cut(kind, "@")
		var dev attest.Device
		var err error
		switch {
		case strings.HasPrefix(profile, "clone-"):
			g := groups[kind]
			if g == nil {
				class, err := sim.CanonicalClass(profile[6:])
				if err != nil {
					return fmt.Errorf("devcluster: fleet device %q: %w", kind, err)
				}
				if g, err = sim.NewCloneGroup(class, sim.Options{Seed: []byte(kind), TimeScale: o.TimeScale}); err != nil {
					return err
				}
				groups[kind] = g
			}
			dev, err = g.Device()
		case strings.HasPrefix(profile, "relay-"):
			actual, claimed, ok := strings.Cut(profile[6:], "-as-")
			if !ok {
				claimed = actual
			}
			if !grouped {
				group = strconv.Itoa(i)
			}
			g := relays[actual+"@"+group]
			if g == nil {
				if g, err = sim.NewRelayGroup(actual, sim.Options{Seed: []byte("relay " + actual + "@" + group), TimeScale: o.TimeScale}); err != nil {
					return err
				}
				relays[actual+"@"+group] = g
			}
			dev, err = g.Device(claimed)
		case strings.HasPrefix(profile, "copy-"):
			// An identity copier: the device of the rest of the profile,
			// presenting the fingerprint of an honest node of the class it
			// claims, as read from the public API.
			claimed := profile[5:]
			if _, c, ok := strings.Cut(claimed, "-as-"); ok {
				claimed = c
			}
			if claimed, err = sim.CanonicalClass(claimed); err != nil {
				return fmt.Errorf("devcluster: fleet device %q: %w", kind, err)
			}
			fps := victims[claimed]
			if len(fps) == 0 {
				return fmt.Errorf("devcluster: fleet device %q: no honest %s node before it to copy", kind, claimed)
			}
			fp := fps[copied[claimed]%len(fps)]
			copied[claimed]++
			opts.Fingerprint = &fp
			dev, err = sim.New(profile[5:], opts)
		default:
			dev, err = sim.New(profile, opts)
		}
		if err != nil {
			return fmt.Errorf("devcluster: fleet device %q: %w", kind, err)
		}
		if _, honest := dev.(*sim.Honest); honest {
			fp, err := dev.Fingerprint(context.Background())
			if err != nil {
				return err
			}
			class, err := sim.CanonicalClass(profile)
			if err != nil {
				return err
			}
			victims[class] = append(victims[class], fp)
		}
		f.Nodes = append(f.Nodes, &SimNode{Kind: kind, Key: key, Device: dev, Prove: sim.ProveHook(dev)})
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
	for i, k := range o.Nodes {
		if err := add(k, o.Honest+len(o.Adversaries)+i); err != nil {
			return nil, err
		}
	}
	// A few connections per member, shared by the nodes (a large fleet
	// would otherwise hold two file descriptors per node in this process);
	// with a jitter model each node's calls still take its own link.
	perMember := min(connsPerMember, (len(f.Nodes)+len(c.Nodes)-1)/len(c.Nodes))
	var pool []*grpc.ClientConn
	for j := range perMember * len(c.Nodes) {
		cc, err := grpc.NewClient(c.Nodes[j%len(c.Nodes)].GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			f.Close()
			return nil, err
		}
		pool = append(pool, cc)
	}
	f.conns = pool
	clients := make([]truegpuv1.NodeServiceClient, len(f.Nodes))
	for i := range f.Nodes {
		cc := pool[i%len(pool)]
		if o.Jitter != nil {
			clients[i] = truegpuv1.NewNodeServiceClient(linkedConn{cc, jitter.link(i)})
		} else {
			clients[i] = truegpuv1.NewNodeServiceClient(cc)
		}
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
			Client: clients[i], Key: n.Key, Devices: []attest.AgentDevice{{Device: n.Device, Prove: n.Prove}},
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
	first := o.Honest + len(o.Adversaries)
	for i, a := range agents {
		var delay time.Duration
		if j := i - first; j >= 0 && j < len(o.Delays) {
			delay = o.Delays[j]
		}
		f.wg.Go(func() {
			// The fleet's goroutines carry a profiler label, so that a CPU
			// profile of a process running a cluster and its fleet
			// separates the two (FleetLabel).
			pprof.Do(fctx, pprof.Labels(FleetLabel, "fleet"), func(ctx context.Context) {
				if wait(ctx, delay) == nil {
					a.Run(ctx)
				}
			})
		})
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

// JitterModel is a wide-area link between each simulated node and the
// cluster. Every node draws a base round-trip time once, uniformly in
// [MinRTT, MaxRTT]; every call then takes a round trip of the base ±20%:
// half of it before the call reaches the cluster and half after the answer
// leaves it (for a stream: half before it opens and half after each
// message arrives). With probability LossPercent a call also loses a packet
// and waits LossDelay more (a retransmission timeout), on one of the two
// halves. Draws come from Seed and the node's position in the fleet, so a
// run is reproducible up to the order in which the calls happen.
type JitterModel struct {
	// MinRTT and MaxRTT bound the nodes' base round-trip times. Both zero:
	// 20 ms and 400 ms.
	MinRTT, MaxRTT time.Duration
	// LossPercent is the chance, in percent (0..100), that a call loses a
	// packet. Zero: no loss.
	LossPercent float64
	// LossDelay is what a lost packet costs. Zero: 1 s.
	LossDelay time.Duration
	// Seed selects the draws.
	Seed uint64
}

// DefaultJitter is a link of 20–400 ms round trips with 1% of calls
// losing a packet for 1 s.
func DefaultJitter() *JitterModel {
	return &JitterModel{MinRTT: 20 * time.Millisecond, MaxRTT: 400 * time.Millisecond, LossPercent: 1, LossDelay: time.Second, Seed: 1}
}

func (j *JitterModel) withDefaults() (JitterModel, error) {
	o := *j
	if o.MinRTT == 0 && o.MaxRTT == 0 {
		o.MinRTT, o.MaxRTT = 20*time.Millisecond, 400*time.Millisecond
	}
	if o.LossDelay == 0 {
		o.LossDelay = time.Second
	}
	switch {
	case o.MinRTT < 0 || o.MaxRTT < o.MinRTT:
		return o, fmt.Errorf("devcluster: jitter: round-trip range %v..%v is empty or negative", o.MinRTT, o.MaxRTT)
	case o.LossPercent < 0 || o.LossPercent > 100:
		return o, fmt.Errorf("devcluster: jitter: loss of %v%% is outside 0..100", o.LossPercent)
	case o.LossDelay < 0:
		return o, fmt.Errorf("devcluster: jitter: loss delay %v is negative", o.LossDelay)
	}
	return o, nil
}

// link is one node's connection to the cluster under the jitter model.
type link struct {
	j    JitterModel
	base time.Duration
	mu   sync.Mutex
	rng  *rand.Rand
}

func (j JitterModel) link(node int) *link {
	rng := rand.New(rand.NewPCG(j.Seed, uint64(node)))
	base := j.MinRTT
	if span := j.MaxRTT - j.MinRTT; span > 0 {
		base += time.Duration(rng.Int64N(int64(span) + 1))
	}
	return &link{j: j, base: base, rng: rng}
}

// trip draws the two halves of one call's round trip.
func (l *link) trip() (before, after time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rtt := time.Duration(float64(l.base) * (0.8 + 0.4*l.rng.Float64()))
	before, after = rtt/2, rtt-rtt/2
	if l.j.LossPercent > 0 && l.rng.Float64()*100 < l.j.LossPercent {
		if l.rng.IntN(2) == 0 {
			before += l.j.LossDelay
		} else {
			after += l.j.LossDelay
		}
	}
	return before, after
}

// wait sleeps for d or until ctx ends, with the gRPC status of the end.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (l *link) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	before, after := l.trip()
	if err := wait(ctx, before); err != nil {
		return err
	}
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	return wait(ctx, after)
}

func (l *link) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	before, _ := l.trip()
	if err := wait(ctx, before); err != nil {
		return nil, err
	}
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &laggedStream{ClientStream: s, l: l}, nil
}

// connsPerMember is how many connections a fleet opens to each member.
const connsPerMember = 16

// linkedConn is a shared connection seen through one node's link: every
// call it carries takes the link's delays.
type linkedConn struct {
	cc *grpc.ClientConn
	l  *link
}

func (c linkedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.l.unary(ctx, method, args, reply, c.cc, func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		return cc.Invoke(ctx, method, req, reply, opts...)
	}, opts...)
}

func (c linkedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.l.stream(ctx, desc, c.cc, method, func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return cc.NewStream(ctx, desc, method, opts...)
	}, opts...)
}

// laggedStream delivers each received message half a round trip late.
type laggedStream struct {
	grpc.ClientStream
	l *link
}

func (s *laggedStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	_, after := s.l.trip()
	return wait(s.Context(), after)
}
