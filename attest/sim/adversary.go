package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/verifier"
)

func rngFromSeed(label string, seed []byte) *rand.Rand {
	sum := sha256.Sum256(append([]byte("truegpu/sim/rng/"+label+"/"), seed...))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])))
}

// Spoofer has no GPU: it presents the fingerprint of the claimed class
// (synthesized, or a copied one through Options.Fingerprint) and computes
// on a CPU, taking the "cpu" class's time. Its results and proofs are
// genuine.
//
// Caught by: the commitment deadline, which is set from the claimed class;
// with a copied fingerprint also by duplicate identity.
type Spoofer struct{ *base }

// NewSpoofer returns a CPU-only device claiming the class.
func NewSpoofer(claimed string, opts Options) (*Spoofer, error) {
	b, err := newBase(claimed, gpuclass.CPU, opts, nil)
	if err != nil {
		return nil, err
	}
	return &Spoofer{b}, nil
}

// Run computes honestly at CPU speed.
func (d *Spoofer) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, honestWork(w))
}

// Downclass is a weaker card claiming a stronger class: it reports the
// claimed class's product name and memory but takes its actual class's
// time. Results and proofs are genuine.
//
// Caught by: the commitment deadline on workloads sized for the claimed
// class, and by the per-device timing profile against the class profile.
type Downclass struct {
	*base
	actual string
}

// NewDownclass returns a device of class actual that claims class claimed.
func NewDownclass(actual, claimed string, opts Options) (*Downclass, error) {
	b, err := newBase(claimed, actual, opts, nil)
	if err != nil {
		return nil, err
	}
	return &Downclass{base: b, actual: b.timing.Name}, nil
}

// ActualClass returns the class whose speed the device has.
func (d *Downclass) ActualClass() string { return d.actual }

// Run computes honestly at the actual class's speed.
func (d *Downclass) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, honestWork(w))
}

// CloneGroup is one physical GPU behind many identities: every Clone it
// hands out reports the same fingerprint, and all of them share one device
// that runs one workload at a time.
//
// Caught by: duplicate identity (the same UUID and board on several
// nodes fails all of them) and by storms: when every clone is challenged
// at once, the runs queue behind each other and all but the first miss
// the deadline.
type CloneGroup struct {
	class string
	opts  Options
	gpu   *gpu
}

// NewCloneGroup returns a group whose identity derives from opts.Seed.
func NewCloneGroup(class string, opts Options) (*CloneGroup, error) {
	if _, err := gpuclass.Lookup(class); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return &CloneGroup{class: class, opts: opts, gpu: newGPU()}, nil
}

// Clone is one identity of a CloneGroup. Its computation is honest.
type Clone struct{ *base }

// Device returns a new identity backed by the group's GPU.
func (g *CloneGroup) Device() (*Clone, error) {
	b, err := newBase(g.class, g.class, g.opts, g.gpu)
	if err != nil {
		return nil, err
	}
	return &Clone{b}, nil
}

// Run computes honestly on the shared GPU.
func (d *Clone) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, honestWork(w))
}

// RelayGroup is one physical device answering for many identities that
// look unrelated: every Relay it hands out reports its own synthesized
// fingerprint of the class it claims, while all of them share one device
// that runs one workload at a time. It is the farm that registers one GPU
// (or one CPU) many times under different names.
//
// Caught by: storms over random subsets of the fleet. When several of its
// identities are challenged at once, the device runs their timed phases
// one after another and every identity but the first misses its deadline.
// Nothing in the identities themselves gives the group away.
type RelayGroup struct {
	actual string
	opts   Options
	gpu    *gpu
	mu     sync.Mutex
	n      int
}

// NewRelayGroup returns a group backed by one device of the actual
// hardware (a class or a gpuclass hardware model such as "cpu-128").
func NewRelayGroup(actual string, opts Options) (*RelayGroup, error) {
	a, err := CanonicalClass(actual)
	if err != nil {
		return nil, err
	}
	return &RelayGroup{actual: a, opts: opts, gpu: newGPU()}, nil
}

// Relay is one identity of a RelayGroup. Its computation is honest; its
// time is the shared device's.
type Relay struct{ *base }

// Device returns a new identity claiming class, with a fingerprint of its
// own, backed by the group's device.
func (g *RelayGroup) Device(claimed string) (*Relay, error) {
	c, err := CanonicalClass(claimed)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.n++
	opts := g.opts
	opts.Seed = append(append([]byte(nil), g.opts.Seed...), []byte(fmt.Sprintf("/relay/%d", g.n))...)
	g.mu.Unlock()
	b, err := newBase(c, g.actual, opts, g.gpu)
	if err != nil {
		return nil, err
	}
	return &Relay{b}, nil
}

// Run computes honestly on the shared device.
func (d *Relay) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, honestWork(w))
}

// Replayer answers its first challenge honestly and replays that answer
// afterwards: every later commitment is the first root, every later proof
// the first proof.
//
// Caught by: proof verification (a proof binds the nonce, the node and the
// root, so an old proof fails for a new challenge) and, before that, by a
// root that repeats across challenges.
type Replayer struct {
	*base

	mu         sync.Mutex
	have       bool
	firstNonce prover.Nonce
	firstRoot  [32]byte
	firstCells []int32
	firstProof []byte
}

// NewReplayer returns a replaying device of the class.
func NewReplayer(class string, opts Options) (*Replayer, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	return &Replayer{base: b}, nil
}

// Run computes the first workload and replays its root afterwards, without
// computing, in the class's time.
func (d *Replayer) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, func() ([]int32, [32]byte, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.have {
			return d.firstCells, d.firstRoot, nil
		}
		cells, root, err := honestWork(w)()
		if err == nil {
			d.have, d.firstNonce, d.firstRoot, d.firstCells = true, w.Nonce, root, cells
		}
		return cells, root, err
	})
}

// Proof is the device's prove hook (an attest.ProveFunc; see ProveHook):
// it proves the first challenge honestly and returns that proof for every
// later one.
func (d *Replayer) Proof(ctx context.Context, w attest.Workload, _ attest.Sampling, node prover.Address, honest func(context.Context) ([]byte, error)) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.firstProof != nil {
		return d.firstProof, nil
	}
	if !d.have || w.Nonce != d.firstNonce {
		return nil, fmt.Errorf("sim replayer: no first proof to replay for nonce %x", w.Nonce[:4])
	}
	p, err := honest(ctx)
	if err != nil {
		return nil, err
	}
	d.firstProof = p
	return p, nil
}

// Partial computes only the first Options.Percent (default 50) percent of
// the rows of C, leaves the rest zero, commits to that honestly and takes
// that share of the class's time.
//
// Caught by: the proof. Sampled cells derive from the oracle's sample seed,
// drawn after the commitment is recorded, so a proof over a fraction f of
// correct cells exists only if all q samples land in the computed part
// (probability f^q); otherwise the attestor cannot build one and the
// challenge expires unproven, a correctness failure.
type Partial struct {
	*base
	percent int
}

// NewPartial returns a partial-computing device of the class.
func NewPartial(class string, opts Options) (*Partial, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	p := opts.Percent
	if p <= 0 || p > 100 {
		p = 50
	}
	return &Partial{base: b, percent: p}, nil
}

// Run computes part of the workload.
func (d *Partial) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, d.percent, func() ([]int32, [32]byte, error) {
		p := w.Profile
		cells, _ := partialCells(p, w.Nonce, d.percent)
		tree, err := prover.NewTree(p, cells)
		if err != nil {
			return nil, [32]byte{}, err
		}
		return cells, tree.Root(), nil
	})
}

// computedCells is how many leading cells a device computing the first
// percent of the rows of C has computed.
func computedCells(p *prover.Profile, percent int) int { return p.M * percent / 100 * p.N }

// partialCells returns C with only the first percent of its rows computed,
// and how many cells that is.
func partialCells(p *prover.Profile, nonce prover.Nonce, percent int) ([]int32, int) {
	cells := prover.Compute(p, nonce)
	n := computedCells(p, percent)
	clear(cells[n:])
	return cells, n
}

// Grinder computes the first Options.Percent (default 50) percent of the
// rows of C and then grinds: it tries Options.Tries (default 64) roots,
// each time changing one cell of the part it did not compute, and commits
// the root whose samples, under its best guess of the oracle's seed (the
// last seed it was given), all fall on computed cells. It proves honestly
// when the real samples let it.
//
// Caught by: the proof, at the rate f^q of a node that does not grind.
// Grinding would pay only if the oracle's seed were predictable; the seed
// is fresh randomness drawn after the root is recorded.
type Grinder struct {
	*Partial
	tries int

	mu   sync.Mutex
	last prover.SampleSeed
}

// NewGrinder returns a grinding device of the class.
func NewGrinder(class string, opts Options) (*Grinder, error) {
	p, err := NewPartial(class, opts)
	if err != nil {
		return nil, err
	}
	g := &Grinder{Partial: p, tries: opts.Tries}
	if g.tries <= 0 {
		g.tries = 64
	}
	return g, nil
}

// Run computes part of the workload and grinds roots against its guess of
// the sample seed.
func (d *Grinder) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, d.percent, func() ([]int32, [32]byte, error) {
		p := w.Profile
		cells, computed := partialCells(p, w.Nonce, d.percent)
		d.mu.Lock()
		guess := d.last
		d.mu.Unlock()
		hit := func(c int) bool { return c < computed }
		node := d.opts.Node
		var root [32]byte
		for try := range d.tries {
			if computed < len(cells) {
				cells[len(cells)-1] = int32(try) // the junk cell that changes the root
			}
			tree, err := prover.NewTree(p, cells)
			if err != nil {
				return nil, root, err
			}
			root = tree.Root()
			if prover.SamplesHit(p, root, guess, w.Nonce, node, hit) {
				break
			}
		}
		return cells, root, nil
	})
}

// Proof is the device's prove hook (an attest.ProveFunc; see ProveHook):
// it remembers the oracle's seed as its next guess and proves honestly
// (which fails when a sample falls on a cell it did not compute).
func (d *Grinder) Proof(ctx context.Context, w attest.Workload, s attest.Sampling, node prover.Address, honest func(context.Context) ([]byte, error)) ([]byte, error) {
	d.mu.Lock()
	d.last = s.Seed
	d.mu.Unlock()
	return honest(ctx)
}

// ErrAbandoned is returned by an Abandoner that declines to prove.
var ErrAbandoned = errors.New("sim: challenge abandoned: the samples miss the computed cells")

// Abandoner computes the first Options.Percent (default 50) percent of the
// rows of C, commits, and on learning the sample seed checks whether every
// sampled cell is one it computed: if so it proves, otherwise it abandons
// the challenge without trying.
//
// Caught by: the proof deadline. A commitment that is never proven is a
// correctness failure, exactly as a wrong answer is, so abandoning is never
// cheaper than answering; it passes at the rate f^q.
type Abandoner struct{ *Partial }

// NewAbandoner returns an abandoning device of the class.
func NewAbandoner(class string, opts Options) (*Abandoner, error) {
	p, err := NewPartial(class, opts)
	if err != nil {
		return nil, err
	}
	return &Abandoner{p}, nil
}

// Proof is the device's prove hook (an attest.ProveFunc; see ProveHook):
// it proves only when every sampled cell was computed.
func (d *Abandoner) Proof(ctx context.Context, w attest.Workload, s attest.Sampling, node prover.Address, honest func(context.Context) ([]byte, error)) ([]byte, error) {
	computed := computedCells(w.Profile, d.percent)
	if !prover.SamplesHit(w.Profile, s.Root, s.Seed, w.Nonce, node, func(c int) bool { return c < computed }) {
		return nil, ErrAbandoned
	}
	return honest(ctx)
}

// Garbage computes nothing: it commits to seeded random roots at once,
// holds no results and submits random bytes of the proof's wire size as
// its proofs.
//
// Caught by: proof decoding or verification (the garbage is almost never a
// valid curve point, and never a valid proof).
type Garbage struct {
	*base
	mu  sync.Mutex
	rng *rand.Rand
}

// NewGarbage returns a garbage-committing device of the class.
func NewGarbage(class string, opts Options) (*Garbage, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	return &Garbage{base: b, rng: rngFromSeed("garbage", opts.Seed)}, nil
}

func (d *Garbage) fill(b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range b {
		b[i] = byte(d.rng.Uint32())
	}
}

// Run returns a random root without computing.
func (d *Garbage) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 0, func() ([]int32, [32]byte, error) {
		var root [32]byte
		d.fill(root[:])
		return nil, root, nil
	})
}

// Proof is the device's prove hook (an attest.ProveFunc; see ProveHook):
// it returns random bytes of verifier.ProofSize.
func (d *Garbage) Proof(ctx context.Context, w attest.Workload, _ attest.Sampling, node prover.Address, honest func(context.Context) ([]byte, error)) ([]byte, error) {
	p := make([]byte, verifier.ProofSize)
	d.fill(p)
	return p, nil
}

// Flaky is an honest device of its class that is unavailable for a seeded
// random Options.Percent (default 30) percent of its runs: those runs fail
// with attest.ErrUnavailable after the class's time, and nothing is
// committed.
//
// Caught by: liveness; every failed run is a missed deadline.
type Flaky struct {
	*base
	percent int
	mu      sync.Mutex
	rng     *rand.Rand
}

// NewFlaky returns a flaky device of the class.
func NewFlaky(class string, opts Options) (*Flaky, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	p := opts.Percent
	if p <= 0 || p > 100 {
		p = 30
	}
	return &Flaky{base: b, percent: p, rng: rngFromSeed("flaky", opts.Seed)}, nil
}

// Run fails for a share of runs and computes honestly otherwise.
func (d *Flaky) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	d.mu.Lock()
	fail := d.rng.IntN(100) < d.percent
	d.mu.Unlock()
	c, err := d.run(ctx, w, 100, honestWork(w))
	if err == nil && fail {
		return attest.Commitment{}, fmt.Errorf("sim device %s: %w: modelled outage", d.fp.UUID, attest.ErrUnavailable)
	}
	return c, err
}

// Forgetful runs the profile workload, the timed phase and the memory
// phase's table fill honestly, but keeps only Options.Percent (default 60)
// percent of the table, as a card with that share of the claimed memory
// must. It walks without regenerating the blocks it dropped: a lane that
// reads one gets a made-up next state (memwalk.Table.WalkPartial). It
// answers in the time the claimed class needs to read the share it holds,
// so its walk is on time.
//
// Caught by: the walk's checks. The oracle draws its check seed after the
// walk root is recorded and recomputes every checked transition from the
// opened block; a made-up state fails the fold. A walk with a fraction m
// of made-up transitions passes with probability (1−m)^16: about 1 in 3,000
// at 40% of the blocks dropped (m ≈ 0.4).
type Forgetful struct {
	*base
	percent int
}

// NewForgetful returns a device of the class that keeps part of the
// memory phase's table.
func NewForgetful(class string, opts Options) (*Forgetful, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	p := opts.Percent
	if p <= 0 || p > 100 {
		p = 60
	}
	return &Forgetful{base: b, percent: p}, nil
}

// Run computes the workload honestly and fills the whole table (its root
// must be right: the checks open blocks against it).
func (d *Forgetful) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, honestWork(w))
}

// Walk walks the held share of the table and makes up the rest, on the
// device's GPU like any walk.
func (d *Forgetful) Walk(ctx context.Context, w attest.Workload, seed [memwalk.SeedSize]byte) ([32]byte, error) {
	held := uint64(d.percent)
	return d.walk(ctx, w,
		func(t *memwalk.Table) (*memwalk.Walk, error) {
			return t.WalkPartial(ctx, seed, 1, func(b uint64) bool { return b*0x9E3779B97F4A7C15>>32%100 < held })
		},
		func(m memwalk.Spec) uint64 {
			return d.timing.WalkExpectedMillis(m.Blocks, m.Lanes, m.Steps) * held / 100
		})
}

// Silent is an honest device of its class that answers its first
// Options.Answers challenges (default 2) and then none: every later run
// waits until the challenge is given up. It is the node that earns a
// record and leaves, or whose operator stops paying for the machine while
// keeping the identity registered.
//
// Caught by: liveness; every challenge after the last answer is missed.
type Silent struct {
	*base
	answers int
	runs    atomic.Int64
}

// NewSilent returns a device of the class that falls silent after its
// first answers.
func NewSilent(class string, opts Options) (*Silent, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	n := opts.Answers
	if n <= 0 {
		n = 2
	}
	return &Silent{base: b, answers: n}, nil
}

// Run computes honestly until the device has answered its share, then
// waits for the challenge's end without answering.
func (d *Silent) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	if d.runs.Add(1) > int64(d.answers) {
		<-ctx.Done()
		return attest.Commitment{}, fmt.Errorf("sim device %s: %w: silent", d.fp.UUID, attest.ErrUnavailable)
	}
	return d.run(ctx, w, 100, honestWork(w))
}

// ProveHook returns the prove hook a simulated device needs in
// attest.AgentDevice.Prove: the Proof method of the devices that make
// their own proofs (Replayer, Grinder, Abandoner, Garbage), and nil for
// every other device, which proves honestly. An agent given a device
// without its hook runs the honest prover over the device's held results
// instead of the device's own proof behaviour.
func ProveHook(d attest.Device) attest.ProveFunc {
	switch d := d.(type) {
	case *Replayer:
		return d.Proof
	case *Grinder:
		return d.Proof
	case *Abandoner:
		return d.Proof
	case *Garbage:
		return d.Proof
	}
	return nil
}

// AgentDevice returns the agent's entry for a simulated device: the device
// with its prove hook (ProveHook); the class is the device's own claim.
func AgentDevice(d attest.Device) attest.AgentDevice {
	return attest.AgentDevice{Device: d, Prove: ProveHook(d)}
}

// Kinds lists the device profiles New accepts, with <class> standing for
// a class name or alias (h100, h100-pcie, h200, a100, a100-40gb, l40s,
// rtx4090, rtx3090, cpu).
func Kinds() []string {
	return []string{
		"<class>", "spoof-<class>", "<actual>-as-<claimed>", "clone-<class>",
		"replay-<class>", "partial-<class>", "grind-<class>", "abandon-<class>", "garbage-<class>", "flaky-<class>", "forget-<class>", "silent-<class>",
	}
}

// New returns the simulated device a profile names (see Kinds), e.g.
// "h100", "spoof-h100", "rtx3090-as-h100", "clone-a100", "replay-4090".
// A "clone-<class>" device is a single identity of a new CloneGroup; two
// clones with the same Options.Seed report the same fingerprint.
func New(profile string, opts Options) (attest.Device, error) {
	kind, rest, found := strings.Cut(strings.ToLower(profile), "-")
	if actual, claimed, ok := strings.Cut(strings.ToLower(profile), "-as-"); ok {
		a, err := CanonicalClass(actual)
		if err != nil {
			return nil, err
		}
		c, err := CanonicalClass(claimed)
		if err != nil {
			return nil, err
		}
		return NewDownclass(a, c, opts)
	}
	if found {
		switch kind {
		case "spoof", "clone", "replay", "partial", "grind", "abandon", "garbage", "flaky", "forget", "silent":
			class, err := CanonicalClass(rest)
			if err != nil {
				return nil, err
			}
			switch kind {
			case "spoof":
				return NewSpoofer(class, opts)
			case "clone":
				g, err := NewCloneGroup(class, opts)
				if err != nil {
					return nil, err
				}
				return g.Device()
			case "replay":
				return NewReplayer(class, opts)
			case "partial":
				return NewPartial(class, opts)
			case "grind":
				return NewGrinder(class, opts)
			case "abandon":
				return NewAbandoner(class, opts)
			case "garbage":
				return NewGarbage(class, opts)
			case "forget":
				return NewForgetful(class, opts)
			case "silent":
				return NewSilent(class, opts)
			default:
				return NewFlaky(class, opts)
			}
		}
	}
	class, err := CanonicalClass(profile)
	if err != nil {
		return nil, fmt.Errorf("%w (device profiles: %s)", err, strings.Join(Kinds(), ", "))
	}
	return NewHonest(class, opts)
}
