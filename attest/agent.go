package attest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// Errors of the attestor loop.
var (
	// ErrBadChallenge reports a challenge the attestor cannot answer: it
	// names another node or an unknown device, or carries a malformed
	// nonce or unknown workload parameters.
	ErrBadChallenge = errors.New("attest: malformed challenge")
	// ErrCommitmentRejected reports a commitment the oracle did not accept
	// (late, stale, or malformed); the response's reason code says which.
	ErrCommitmentRejected = errors.New("attest: commitment rejected")
	// ErrResultsMismatch reports a device whose held results do not hash
	// to the root it committed: a faulty device. No proof is submitted.
	ErrResultsMismatch = errors.New("attest: device results do not match its commitment")
	// ErrUnknownClass reports a device whose class cannot be determined;
	// configure it explicitly.
	ErrUnknownClass = errors.New("attest: cannot determine device class")
)

// KeySource returns the proving key for a profile. Implementations cache:
// it is called for every proof.
type KeySource func(p *prover.Profile) (*prover.ProvingKey, error)

// DevKeys returns a KeySource backed by prover.UnsafeDevKeys, which sets
// each profile up once per process. The keys are UNSAFE (their trapdoor is
// public): use them only against an oracle in development mode.
func DevKeys() KeySource {
	return func(p *prover.Profile) (*prover.ProvingKey, error) {
		pk, _, err := prover.UnsafeDevKeys(p, "")
		if err != nil {
			return nil, fmt.Errorf("attest: dev keys for %s: %w", p.ID(), err)
		}
		return pk, nil
	}
}

// AgentDevice is one device the agent answers for.
type AgentDevice struct {
	Device Device
	// Class is the gpuclass name the node claims for the device. Empty
	// means: ask the device (ClassClaimer), else match its NVML product
	// name.
	Class string
	// Prove, if set, produces the device's proofs instead of the honest
	// prover; it is handed the honest proof as a function to call (see
	// ProveFunc). Nil: every proof is the honest one. Only simulations
	// set it (sim.ProveHook).
	Prove ProveFunc
}

// AgentConfig configures an Agent.
type AgentConfig struct {
	// Client is the oracle's node API. Many agents may share one
	// connection.
	Client truegpuv1.NodeServiceClient
	// Key is the node's identity key.
	Key *NodeKey
	// Devices are the node's devices; index i in this list is device
	// index i in registrations and challenges.
	Devices []AgentDevice
	// Keys supplies proving keys. Required.
	Keys KeySource
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// ProveConcurrency bounds concurrent proofs; default 1 (proving uses
	// every core).
	ProveConcurrency int
	// ProveSlots, if set, bounds proving across every agent given the same
	// channel (its capacity is the limit), instead of ProveConcurrency per
	// agent: a simulated fleet in one process shares the host's cores.
	ProveSlots chan struct{}
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// after each failure; each wait is drawn uniformly between half and
	// all of the current delay. Defaults 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often the agent polls for challenges when the
	// oracle does not offer the stream; default 2s.
	PollInterval time.Duration
	// ShutdownGrace is how long Run waits for in-flight challenges after
	// its context is cancelled; default 5s.
	ShutdownGrace time.Duration
	// ClockSkewAllowance extends the local commit timeout past the
	// challenge's deadline, since the oracle's clock decides; default 1s.
	ClockSkewAllowance time.Duration
	// OnVerdict, if set, is called with every verdict the oracle returns.
	OnVerdict func(*truegpuv1.Verdict)
	// OnRegistered, if set, is called after each successful registration.
	OnRegistered func(*truegpuv1.RegisterNodeResponse)
	// OnOutcome, if set, is called by Run once per challenge it answered,
	// with what Handle returned.
	OnOutcome func(*Outcome, error)
	// Now is the clock for request timestamps; nil means time.Now.
	Now func() time.Time
	// Cluster is the oracle cluster id the node's signed requests name
	// (GetCluster's cluster_id), so they are good for that cluster only.
	// Default "dev", the id of development clusters.
	Cluster string
}

// Validate reports every problem of the configuration at once.
func (c *AgentConfig) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("no oracle client"))
	}
	if c.Key == nil {
		errs = append(errs, errors.New("no node key"))
	}
	if len(c.Devices) == 0 {
		errs = append(errs, errors.New("no devices"))
	}
	for i, d := range c.Devices {
		if d.Device == nil {
			errs = append(errs, fmt.Errorf("device %d is nil", i))
		}
		if d.Class != "" {
			if _, err := gpuclass.Lookup(d.Class); err != nil {
				errs = append(errs, fmt.Errorf("device %d: %w", i, err))
			}
		}
	}
	if c.Keys == nil {
		errs = append(errs, errors.New("no proving key source"))
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 || (c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff) {
		errs = append(errs, fmt.Errorf("backoff bounds %v..%v are not ordered", c.MinBackoff, c.MaxBackoff))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("attest: invalid agent config: %w", errors.Join(errs...))
}

func (c *AgentConfig) ensureDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ProveConcurrency <= 0 {
		c.ProveConcurrency = 1
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MinBackoff > c.MaxBackoff {
		c.MinBackoff = c.MaxBackoff
	}
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 5 * time.Second
	}
	if c.ClockSkewAllowance == 0 {
		c.ClockSkewAllowance = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Cluster == "" {
		c.Cluster = "dev"
	}
}

// Agent is the node attestor: it registers the node's devices, receives
// challenges, runs them, commits before the deadline, proves and submits.
// Its methods are safe for concurrent use.
type Agent struct {
	cfg     AgentConfig
	addr    string
	classes []string
	fps     []Fingerprint
	prove   chan struct{} // proving slots

	mu   sync.Mutex
	seen map[string]bool // challenge ids being or already answered
	ids  []string        // insertion order of seen, for bounding it
}

// NewAgent validates cfg and reads every device's fingerprint.
func NewAgent(ctx context.Context, cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.ensureDefaults()
	a := &Agent{
		cfg:   cfg,
		addr:  cfg.Key.Address().String(),
		prove: cfg.ProveSlots,
		seen:  map[string]bool{},
	}
	if a.prove == nil {
		a.prove = make(chan struct{}, cfg.ProveConcurrency)
	}
	for i, d := range cfg.Devices {
		fp, err := d.Device.Fingerprint(ctx)
		if err != nil {
			return nil, fmt.Errorf("attest: fingerprint of device %d: %w", i, err)
		}
		class, err := DeviceClass(d, fp)
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", i, err)
		}
		a.fps = append(a.fps, fp)
		a.classes = append(a.classes, class)
	}
	return a, nil
}

// DeviceClass returns the class a node claims for a device: d.Class when
// set, else the device's own claim (ClassClaimer), else the class whose
// NVML product-name patterns match fp.Name. It fails with ErrUnknownClass.
func DeviceClass(d AgentDevice, fp Fingerprint) (string, error) {
	if d.Class != "" {
		c, err := gpuclass.Lookup(d.Class)
		return c.Name, err
	}
	if cc, ok := d.Device.(ClassClaimer); ok {
		return cc.ClaimedClass(), nil
	}
	if c, ok := gpuclass.MatchNVMLName(fp.Name); ok {
		return c.Name, nil
	}
	return "", fmt.Errorf("%w: %q is not in the class table; set the class explicitly (known: %s)",
		ErrUnknownClass, fp.Name, strings.Join(gpuclass.Names(), ", "))
}

// Address returns the node's address (EIP-55).
func (a *Agent) Address() string { return a.addr }

// Classes returns the class claimed for each device.
func (a *Agent) Classes() []string { return append([]string(nil), a.classes...) }

// RegistrationRequest returns the signed registration of the node's
// devices.
func (a *Agent) RegistrationRequest() (*truegpuv1.RegisterNodeRequest, error) {
	req := &truegpuv1.RegisterNodeRequest{Address: a.addr, TimestampUnixMs: a.cfg.Now().UnixMilli(), Cluster: a.cfg.Cluster}
	for i, fp := range a.fps {
		req.Devices = append(req.Devices, &truegpuv1.Device{
			Index:        uint32(i),
			ClaimedClass: a.classes[i],
			Fingerprint:  fp.Proto(),
		})
	}
	if err := a.cfg.Key.Sign(req); err != nil {
		return nil, err
	}
	return req, nil
}

// Register registers the node and its devices once.
func (a *Agent) Register(ctx context.Context) (*truegpuv1.RegisterNodeResponse, error) {
	req, err := a.RegistrationRequest()
	if err != nil {
		return nil, err
	}
	resp, err := a.cfg.Client.RegisterNode(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("attest: register node %s: %w", a.addr, err)
	}
	a.cfg.Logger.Info("registered", "node", a.addr, "devices", len(a.fps), "classes", a.classes, "status", resp.GetStatus().String())
	if a.cfg.OnRegistered != nil {
		a.cfg.OnRegistered(resp)
	}
	return resp, nil
}

// Run registers the node, then answers challenges until ctx is cancelled:
// it keeps a challenge stream open, reconnecting with exponential backoff
// and jitter, polls once after every reconnect so that nothing issued
// while disconnected is missed, and falls back to polling when the oracle
// does not offer the stream. On cancellation it waits up to ShutdownGrace
// for challenges in flight and returns nil.
func (a *Agent) Run(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var inflight sync.WaitGroup
	defer func() {
		done := make(chan struct{})
		go func() { inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(a.cfg.ShutdownGrace):
			a.cfg.Logger.Warn("shutdown grace elapsed; abandoning challenges in flight", "grace", a.cfg.ShutdownGrace)
			cancelWork()
			<-done
		}
	}()
	dispatch := func(ch *truegpuv1.Challenge) {
		if !a.claim(ch.GetChallengeId()) {
			return
		}
		inflight.Go(func() {
			out, err := a.Handle(work, ch)
			if err != nil {
				a.cfg.Logger.Warn("challenge failed", "challenge", ch.GetChallengeId(), "err", err)
			}
			if a.cfg.OnOutcome != nil {
				a.cfg.OnOutcome(out, err)
			}
		})
	}

	bo := backoff{min: a.cfg.MinBackoff, max: a.cfg.MaxBackoff}
	registered := false
	for ctx.Err() == nil {
		if !registered {
			if _, err := a.Register(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				d := bo.next()
				a.cfg.Logger.Warn("registration failed; retrying", "err", err, "in", d)
				sleepCtx(ctx, d)
				continue
			}
			registered = true
			bo.reset()
		}
		err := a.streamOnce(ctx, dispatch, bo.reset)
		if ctx.Err() != nil {
			break
		}
		switch status.Code(err) {
		case codes.Unimplemented:
			a.cfg.Logger.Info("oracle offers no challenge stream; polling", "every", a.cfg.PollInterval)
			err = a.pollLoop(ctx, dispatch)
		case codes.NotFound, codes.Unauthenticated, codes.PermissionDenied:
			registered = false
		}
		if ctx.Err() != nil {
			break
		}
		d := bo.next()
		a.cfg.Logger.Warn("challenge stream ended; reconnecting", "err", err, "in", d)
		sleepCtx(ctx, d)
	}
	a.cfg.Logger.Info("shutting down", "node", a.addr)
	return nil
}

// streamOnce opens one challenge stream, polls once, and dispatches
// challenges until the stream fails. received is called on every message.
func (a *Agent) streamOnce(ctx context.Context, dispatch func(*truegpuv1.Challenge), received func()) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &truegpuv1.StreamChallengesRequest{Address: a.addr, TimestampUnixMs: a.cfg.Now().UnixMilli(), Cluster: a.cfg.Cluster}
	if err := a.cfg.Key.Sign(req); err != nil {
		return err
	}
	stream, err := a.cfg.Client.StreamChallenges(sctx, req)
	if err != nil {
		return err
	}
	if err := a.pollOnce(ctx, dispatch); err != nil && status.Code(err) != codes.Unimplemented {
		a.cfg.Logger.Debug("poll after reconnect failed", "err", err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		received()
		if ch := msg.GetChallenge(); ch != nil {
			dispatch(ch)
		}
	}
}

func (a *Agent) pollOnce(ctx context.Context, dispatch func(*truegpuv1.Challenge)) error {
	req := &truegpuv1.PollChallengesRequest{Address: a.addr, TimestampUnixMs: a.cfg.Now().UnixMilli(), Cluster: a.cfg.Cluster}
	if err := a.cfg.Key.Sign(req); err != nil {
		return err
	}
	resp, err := a.cfg.Client.PollChallenges(ctx, req)
	if err != nil {
		return err
	}
	for _, ch := range resp.GetChallenges() {
		dispatch(ch)
	}
	return nil
}

func (a *Agent) pollLoop(ctx context.Context, dispatch func(*truegpuv1.Challenge)) error {
	t := time.NewTicker(a.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := a.pollOnce(ctx, dispatch); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// claim marks a challenge as taken; it reports false if it already was.
// The memory of answered challenges is bounded.
func (a *Agent) claim(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[id] {
		return false
	}
	a.seen[id] = true
	a.ids = append(a.ids, id)
	if len(a.ids) > 4096 {
		delete(a.seen, a.ids[0])
		a.ids = a.ids[1:]
	}
	return true
}

// Outcome is what happened to one challenge.
type Outcome struct {
	ChallengeID string
	Root        [32]byte
	// DeviceElapsed is the device's own measure of the run.
	DeviceElapsed time.Duration
	// Commitment is the oracle's answer to the commitment.
	Commitment *truegpuv1.SubmitCommitmentResponse
	// Walk is the oracle's answer to the memory phase's walk root; nil
	// without one.
	Walk *truegpuv1.SubmitWalkResponse
	// Verdict is the oracle's verdict on the proof; nil if no proof was
	// submitted.
	Verdict *truegpuv1.Verdict
}

// ProfileForParams resolves a challenge's workload parameters to a
// published profile and checks that every parameter and the digest match.
func ProfileForParams(params *truegpuv1.WorkloadParams) (*prover.Profile, error) {
	if params == nil {
		return nil, fmt.Errorf("%w: no workload parameters", ErrBadChallenge)
	}
	name, ver, _ := strings.Cut(params.GetProfile(), "/v")
	p, err := prover.ProfileByName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: profile %q: %w", ErrBadChallenge, params.GetProfile(), err)
	}
	if v, err := strconv.ParseUint(ver, 10, 32); err != nil || uint32(v) != p.Version {
		return nil, fmt.Errorf("%w: profile %q: this attestor knows %s; upgrade it", ErrBadChallenge, params.GetProfile(), p.ID())
	}
	if int(params.GetM()) != p.M || int(params.GetN()) != p.N || int(params.GetK()) != p.K || int(params.GetSamples()) != p.Q {
		return nil, fmt.Errorf("%w: parameters %dx%dx%d q=%d differ from %s (%dx%dx%d q=%d)", ErrBadChallenge,
			params.GetM(), params.GetN(), params.GetK(), params.GetSamples(), p.ID(), p.M, p.N, p.K, p.Q)
	}
	if d := p.Digest(); len(params.GetParamsDigest()) != 0 && string(params.GetParamsDigest()) != string(d[:]) {
		return nil, fmt.Errorf("%w: parameter digest %x differs from %s's %x", ErrBadChallenge, params.GetParamsDigest(), p.ID(), d)
	}
	return p, nil
}

// Handle answers one challenge: run, commit (retrying transient failures
// until the deadline), prove and submit the proof. It returns the outcome
// so far together with any error.
func (a *Agent) Handle(ctx context.Context, ch *truegpuv1.Challenge) (*Outcome, error) {
	out := &Outcome{ChallengeID: ch.GetChallengeId()}
	log := a.cfg.Logger.With("challenge", ch.GetChallengeId(), "device", ch.GetDeviceIndex())
	w, idx, err := a.validate(ch)
	if err != nil {
		return out, err
	}
	p := w.Profile
	ad := a.cfg.Devices[idx]
	dev := ad.Device
	if len(ch.GetRoot()) != 0 || len(ch.GetSampleSeed()) != 0 {
		return a.resume(ctx, log, ch, ad, w, out)
	}

	// Time-critical part: run and commit before the deadline. A run that
	// overruns is still committed for up to one more window (the time from
	// issue to deadline): the oracle then records how late it was
	// (COMMITMENT_LATE with its arrival) instead of a silent miss.
	deadline := time.UnixMilli(ch.GetCommitDeadlineUnixMs())
	var window int64
	if ch.GetIssuedAtUnixMs() > 0 {
		window = ch.GetCommitDeadlineUnixMs() - ch.GetIssuedAtUnixMs()
	}
	cctx, cancel := a.overrunContext(ctx, ch.GetCommitDeadlineUnixMs(), window)
	defer cancel()
	log.Info("running challenge", "profile", p.ID(), "deadline_in", time.Until(deadline).Round(time.Millisecond), "storm", ch.GetStormId())
	c, err := dev.Run(cctx, w)
	if err != nil {
		return out, fmt.Errorf("attest: run challenge %s on device %d: %w", ch.GetChallengeId(), idx, err)
	}
	out.Root, out.DeviceElapsed = c.Root, c.Elapsed
	creq := &truegpuv1.SubmitCommitmentRequest{
		ChallengeId:     ch.GetChallengeId(),
		Address:         a.addr,
		Root:            c.Root[:],
		DeviceElapsedMs: uint64(c.Elapsed.Milliseconds()),
	}
	if !w.Timed.IsZero() {
		creq.TimedRoot = c.TimedRoot[:]
	}
	if !w.Memory.IsZero() {
		creq.TableRoot = c.TableRoot[:]
	}
	if err := a.cfg.Key.Sign(creq); err != nil {
		return out, err
	}
	cresp, err := retry(cctx, a.cfg.MinBackoff, func(ctx context.Context) (*truegpuv1.SubmitCommitmentResponse, error) {
		return a.cfg.Client.SubmitCommitment(ctx, creq)
	})
	if err != nil {
		return out, fmt.Errorf("attest: submit commitment for %s: %w", ch.GetChallengeId(), err)
	}
	out.Commitment = cresp
	if !cresp.GetAccepted() {
		return out, fmt.Errorf("%w: challenge %s: %s", ErrCommitmentRejected, ch.GetChallengeId(), cresp.GetReason())
	}
	seed, err := sampleSeed(cresp.GetSampleSeed())
	if err != nil {
		return out, fmt.Errorf("attest: commitment for %s: %w", ch.GetChallengeId(), err)
	}
	log.Info("committed", "root", "0x"+hex.EncodeToString(c.Root[:8]), "device_elapsed", c.Elapsed.Round(time.Microsecond))
	check, err := a.walk(ctx, log, ch, dev, w, seed, cresp.GetWalkDeadlineUnixMs(), out)
	if err != nil {
		return out, err
	}
	return a.proveAndSubmit(ctx, log, ch, ad, w, c.Root, seed, check, out)
}

// walk runs the memory phase's walk once the oracle's walk seed (the
// commitment's sample seed) is known and submits the walk root before the
// walk deadline. Like the commitment, a walk that overruns is still
// submitted for up to one more walk window, so the oracle records how late
// it was. It returns the oracle's check seed, or nil for a workload
// without a memory phase.
func (a *Agent) walk(ctx context.Context, log *slog.Logger, ch *truegpuv1.Challenge, dev Device, w Workload, seed prover.SampleSeed, deadlineMs int64, out *Outcome) ([]byte, error) {
	if w.Memory.IsZero() {
		return nil, nil
	}
	walker, ok := dev.(Walker)
	if !ok {
		return nil, fmt.Errorf("%w: challenge %s has a memory phase and this device cannot run it", ErrNotSupported, ch.GetChallengeId())
	}
	wctx, cancel := a.overrunContext(ctx, deadlineMs, int64(min(ch.GetMemory().GetWalkDeadlineMs(), 1<<40)))
	defer cancel()
	start := time.Now()
	root, err := walker.Walk(wctx, w, [memwalk.SeedSize]byte(seed[:]))
	if err != nil {
		return nil, fmt.Errorf("attest: walk the memory phase of %s: %w", ch.GetChallengeId(), err)
	}
	wreq := &truegpuv1.SubmitWalkRequest{ChallengeId: ch.GetChallengeId(), Address: a.addr, WalkRoot: root[:]}
	if err := a.cfg.Key.Sign(wreq); err != nil {
		return nil, err
	}
	wresp, err := retry(wctx, a.cfg.MinBackoff, func(ctx context.Context) (*truegpuv1.SubmitWalkResponse, error) {
		return a.cfg.Client.SubmitWalk(ctx, wreq)
	})
	if err != nil {
		return nil, fmt.Errorf("attest: submit walk for %s: %w", ch.GetChallengeId(), err)
	}
	out.Walk = wresp
	if !wresp.GetAccepted() {
		return nil, fmt.Errorf("%w: challenge %s: walk %s", ErrCommitmentRejected, ch.GetChallengeId(), wresp.GetReason())
	}
	if len(wresp.GetCheckSeed()) != memwalk.SeedSize {
		return nil, fmt.Errorf("%w: the oracle sent a check seed of %d bytes, want %d", ErrBadChallenge, len(wresp.GetCheckSeed()), memwalk.SeedSize)
	}
	log.Info("walked", "walk_root", "0x"+hex.EncodeToString(root[:8]), "device_elapsed", time.Since(start).Round(time.Millisecond))
	return wresp.GetCheckSeed(), nil
}

// overrunContext is the context of a time-critical step due at deadlineMs
// (unix milliseconds; 0: no deadline): it ends one window (windowMs, the
// time the step was given; ignored when not positive) and the clock-skew
// allowance after the deadline, so that a step that overruns is still
// submitted and the oracle records how late it was, instead of a silent
// miss.
func (a *Agent) overrunContext(ctx context.Context, deadlineMs, windowMs int64) (context.Context, context.CancelFunc) {
	if deadlineMs <= 0 {
		return ctx, func() {}
	}
	grace := a.cfg.ClockSkewAllowance
	if windowMs > 0 {
		grace += time.Duration(windowMs) * time.Millisecond
	}
	return context.WithDeadline(ctx, time.UnixMilli(deadlineMs).Add(grace))
}

// sampleSeed checks the oracle's sample seed.
func sampleSeed(b []byte) (prover.SampleSeed, error) {
	if len(b) != prover.SampleSeedSize {
		return prover.SampleSeed{}, fmt.Errorf("%w: the oracle sent a sample seed of %d bytes, want %d (an oracle of an older protocol version?)",
			ErrBadChallenge, len(b), prover.SampleSeedSize)
	}
	return prover.SampleSeed(b), nil
}

// resume proves a challenge the oracle already holds a commitment for (the
// answer to the commitment was lost, or the stream reconnected): possible
// only while the device still holds results that hash to the recorded
// root.
func (a *Agent) resume(ctx context.Context, log *slog.Logger, ch *truegpuv1.Challenge, ad AgentDevice, w Workload, out *Outcome) (*Outcome, error) {
	dev := ad.Device
	if len(ch.GetRoot()) != 32 {
		return out, fmt.Errorf("%w: committed challenge %s carries a root of %d bytes", ErrBadChallenge, ch.GetChallengeId(), len(ch.GetRoot()))
	}
	seed, err := sampleSeed(ch.GetSampleSeed())
	if err != nil {
		return out, fmt.Errorf("attest: committed challenge %s: %w", ch.GetChallengeId(), err)
	}
	root := [32]byte(ch.GetRoot())
	out.Root = root
	if _, err := dev.Results(w.Nonce); err != nil {
		return out, fmt.Errorf("attest: challenge %s was committed, but its results are gone (%w); it will expire unproven", ch.GetChallengeId(), err)
	}
	log.Info("resuming committed challenge", "root", "0x"+hex.EncodeToString(root[:8]))
	check := ch.GetCheckSeed()
	if !w.Memory.IsZero() && len(ch.GetWalkRoot()) == 0 {
		if check, err = a.walk(ctx, log, ch, dev, w, seed, ch.GetWalkDeadlineUnixMs(), out); err != nil {
			return out, err
		}
	}
	return a.proveAndSubmit(ctx, log, ch, ad, w, root, seed, check, out)
}

// proveAndSubmit proves the cells the sample seed selects from the
// committed results (with the device's prove hook, if it has one) and
// submits the proof. It is not time-critical: the proof deadline is
// minutes away.
func (a *Agent) proveAndSubmit(ctx context.Context, log *slog.Logger, ch *truegpuv1.Challenge, ad AgentDevice, w Workload, root [32]byte, seed prover.SampleSeed, check []byte, out *Outcome) (*Outcome, error) {
	dev := ad.Device
	pctx := ctx
	if d := ch.GetProofDeadlineUnixMs(); d > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, time.UnixMilli(d).Add(a.cfg.ClockSkewAllowance))
		defer cancel()
	}
	select {
	case a.prove <- struct{}{}:
	case <-pctx.Done():
		return out, fmt.Errorf("attest: waiting to prove %s: %w", ch.GetChallengeId(), pctx.Err())
	}
	proof, err := a.proof(pctx, log, ad, w, root, seed)
	<-a.prove
	if err != nil {
		return out, fmt.Errorf("attest: prove %s: %w", ch.GetChallengeId(), err)
	}
	preq := &truegpuv1.SubmitProofRequest{ChallengeId: ch.GetChallengeId(), Address: a.addr, Proof: proof}
	if !w.Timed.IsZero() {
		// A device that cannot open its timed phase still submits: the
		// oracle records the rejection at once instead of waiting for
		// the proof deadline.
		if preq.TimedOpenings, err = dev.OpenTimed(w.Nonce, [timed.SeedSize]byte(seed[:])); err != nil {
			log.Warn("cannot open the timed phase", "err", err)
		}
	}
	if walker, ok := dev.(Walker); ok && !w.Memory.IsZero() && len(check) == memwalk.SeedSize {
		if preq.WalkOpenings, err = walker.OpenWalk(w.Nonce, [memwalk.SeedSize]byte(check)); err != nil {
			log.Warn("cannot open the memory phase's walk", "err", err)
		}
	}
	if err := a.cfg.Key.Sign(preq); err != nil {
		return out, err
	}
	presp, err := retry(pctx, a.cfg.MinBackoff, func(ctx context.Context) (*truegpuv1.SubmitProofResponse, error) {
		return a.cfg.Client.SubmitProof(ctx, preq)
	})
	if err != nil {
		return out, fmt.Errorf("attest: submit proof for %s: %w", ch.GetChallengeId(), err)
	}
	out.Verdict = presp.GetVerdict()
	v := out.Verdict
	log.Info("verdict", "accepted", v.GetAccepted(), "reason", v.GetReason(), "latency_ms", v.GetCommitLatencyMs(), "expected_ms", v.GetExpectedLatencyMs())
	if a.cfg.OnVerdict != nil && v != nil {
		a.cfg.OnVerdict(v)
	}
	return out, nil
}

// validate checks a challenge from the oracle before any work: it must
// name this node and one of its devices, carry a 32-byte nonce and the
// parameters of a published profile.
func (a *Agent) validate(ch *truegpuv1.Challenge) (Workload, int, error) {
	if !strings.EqualFold(ch.GetAddress(), a.addr) {
		return Workload{}, 0, fmt.Errorf("%w: challenge %s is for node %s, this node is %s", ErrBadChallenge, ch.GetChallengeId(), ch.GetAddress(), a.addr)
	}
	idx := int(ch.GetDeviceIndex())
	if idx >= len(a.cfg.Devices) {
		return Workload{}, 0, fmt.Errorf("%w: device index %d, this node has %d devices", ErrBadChallenge, ch.GetDeviceIndex(), len(a.cfg.Devices))
	}
	if u := ch.GetDeviceUuid(); u != "" && u != a.fps[idx].UUID {
		return Workload{}, 0, fmt.Errorf("%w: challenge names device %s, device %d is %s", ErrBadChallenge, u, idx, a.fps[idx].UUID)
	}
	if len(ch.GetNonce()) != len(prover.Nonce{}) {
		return Workload{}, 0, fmt.Errorf("%w: nonce of %d bytes, want 32", ErrBadChallenge, len(ch.GetNonce()))
	}
	p, err := ProfileForParams(ch.GetParams())
	if err != nil {
		return Workload{}, 0, err
	}
	w := Workload{Profile: p, Nonce: prover.Nonce(ch.GetNonce())}
	if tp := ch.GetTimed(); tp != nil {
		w.Timed = timed.Spec{M: tp.GetM(), N: tp.GetN(), K: tp.GetK()}
		w.TimedModel = timed.Spec{M: tp.GetModelM(), N: tp.GetModelN(), K: tp.GetModelK()}
		if err := w.Timed.Validate(); err != nil {
			return Workload{}, 0, fmt.Errorf("%w: challenge %s: %w", ErrBadChallenge, ch.GetChallengeId(), err)
		}
		if w.TimedModel.IsZero() {
			w.TimedModel = w.Timed
		}
	}
	if mp := ch.GetMemory(); mp != nil {
		w.Memory = memwalk.Spec{Blocks: mp.GetBlocks(), Lanes: mp.GetLanes(), Steps: mp.GetSteps()}
		w.MemoryModel = memwalk.Spec{Blocks: mp.GetModelBlocks(), Lanes: mp.GetModelLanes(), Steps: mp.GetModelSteps()}
		if err := w.Memory.Validate(); err != nil {
			return Workload{}, 0, fmt.Errorf("%w: challenge %s: %w", ErrBadChallenge, ch.GetChallengeId(), err)
		}
		if w.MemoryModel.IsZero() {
			w.MemoryModel = w.Memory
		}
	}
	return w, idx, nil
}

// proof produces the proof for a committed workload with the device's
// prove hook, or the honest proof when it has none, reporting progress
// while it runs.
func (a *Agent) proof(ctx context.Context, log *slog.Logger, ad AgentDevice, w Workload, root [32]byte, seed prover.SampleSeed) ([]byte, error) {
	node := a.cfg.Key.ProverAddress()
	honest := func(ctx context.Context) ([]byte, error) {
		cells, err := ad.Device.Results(w.Nonce)
		if err != nil {
			return nil, err
		}
		pk, err := a.cfg.Keys(w.Profile)
		if err != nil {
			return nil, err
		}
		type result struct {
			proof []byte
			root  [32]byte
			err   error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			proof, r, err := prover.Prove(pk, w.Profile, w.Nonce, node, seed, cells)
			done <- result{proof, r, err}
		}()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case r := <-done:
				if r.err != nil {
					return nil, r.err
				}
				if r.root != root {
					return nil, fmt.Errorf("%w: committed %x, results hash to %x", ErrResultsMismatch, root[:8], r.root[:8])
				}
				log.Info("proved", "took", time.Since(start).Round(time.Millisecond), "bytes", len(r.proof))
				return r.proof, nil
			case <-tick.C:
				log.Info("still proving", "elapsed", time.Since(start).Round(time.Second))
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	log.Info("proving", "profile", w.Profile.ID())
	if ad.Prove != nil {
		return ad.Prove(ctx, w, Sampling{Root: root, Seed: seed}, node, honest)
	}
	return honest(ctx)
}

// retryable reports gRPC failures worth retrying: the request may not
// have reached the leader.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// retry calls f until it succeeds, fails permanently, or ctx ends. The
// requests it sends are idempotent at the oracle (keyed by challenge).
func retry[T any](ctx context.Context, min time.Duration, f func(context.Context) (T, error)) (T, error) {
	bo := backoff{min: min, max: 2 * time.Second}
	for {
		v, err := f(ctx)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return v, err
		}
		if !sleepCtx(ctx, bo.next()) {
			return v, err
		}
	}
}

// backoff is exponential backoff with jitter: each wait is uniform in
// [d/2, d] for the current delay d.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 30)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.n = 0 }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
