package oracle

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// Rejections of the verification pipeline. Each names the reason a
// submission was refused before it could become a verdict; compare with
// errors.Is. Reason returns the machine-readable code.
var (
	ErrInvalidRequest = errors.New("oracle: invalid request")
	ErrBadSignature   = errors.New("oracle: signature does not match the address")
	ErrUnknownNode    = errors.New("oracle: node is not registered")
	ErrRateLimited    = errors.New("oracle: rate limit exceeded")
	ErrTooLarge       = errors.New("oracle: message too large")
	ErrClockSkew      = errors.New("oracle: request timestamp too far from the oracle's clock")
	ErrUnknownNonce   = errors.New("oracle: no open challenge with this id for this node")
	ErrNonceReused    = errors.New("oracle: challenge already answered")
	ErrNotCommitted   = errors.New("oracle: challenge has no commitment yet")
	ErrProofLate      = errors.New("oracle: proof after the proof deadline")
	ErrUnknownClass   = errors.New("oracle: claimed class is not in the class table")
)

// Reason codes of refused requests, carried in the gRPC error's ErrorInfo
// (and the REST error body) so that a client can act on them. They are
// never recorded: a verdict's reason, and every reason in a node's standing,
// is a reputation.Reason, the one vocabulary of what a node did.
const (
	ReasonBadSignature   = "SIGNATURE_INVALID"
	ReasonUnknownNode    = "NODE_UNKNOWN"
	ReasonRateLimited    = "RATE_LIMITED"
	ReasonTooLarge       = "MESSAGE_TOO_LARGE"
	ReasonClockSkew      = "TIMESTAMP_SKEW"
	ReasonUnknownNonce   = "NONCE_UNKNOWN"
	ReasonNonceReused    = "NONCE_REUSED"
	ReasonNotCommitted   = "NOT_COMMITTED"
	ReasonProofLate      = "PROOF_LATE"
	ReasonInvalidRequest = "INVALID_REQUEST"
	ReasonUnknownClass   = "CLASS_UNKNOWN"
)

// Reason returns the reason code of a pipeline rejection, or "" for other
// errors.
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		code string
	}{
		{ErrBadSignature, ReasonBadSignature}, {ErrUnknownNode, ReasonUnknownNode},
		{ErrRateLimited, ReasonRateLimited}, {ErrTooLarge, ReasonTooLarge},
		{ErrClockSkew, ReasonClockSkew}, {ErrUnknownNonce, ReasonUnknownNonce},
		{ErrNonceReused, ReasonNonceReused}, {ErrNotCommitted, ReasonNotCommitted},
		{ErrProofLate, ReasonProofLate}, {ErrUnknownClass, ReasonUnknownClass},
		{ErrInvalidRequest, ReasonInvalidRequest},
	} {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return ""
}

// PipelineConfig configures the verification pipeline. A zero field takes
// the default its comment names; Validate refuses negative values and a
// batch larger than the queue.
type PipelineConfig struct {
	// Workers is the number of batches verified at once. Default 2: each
	// batch spreads its Miller loops over every core, but its final
	// exponentiation, any bisection and the proposal of its verdicts run
	// on one; a second batch in flight keeps the other cores busy
	// meanwhile (on two cores, about 8% more attestations per second than
	// one worker).
	Workers int
	// QueueDepth bounds the proofs waiting for verification; beyond it
	// submissions fail with ErrOverloaded. Default 8192.
	QueueDepth int
	// MaxBatch is the most proofs verified in one batch, at most
	// QueueDepth. Default 128.
	MaxBatch int
	// BatchWait is how long the first proof of a batch waits for others.
	// Default 2ms.
	BatchWait time.Duration
	// RatePerNode is the sustained requests per second one node may make
	// to write endpoints; Burst the bucket size. Defaults: RatePerNode 50,
	// Burst twice RatePerNode (100 at the default rate).
	RatePerNode, Burst int
	// MaxClockSkew bounds |node timestamp − oracle clock| on signed
	// requests that carry one. Default 5 minutes.
	MaxClockSkew time.Duration
	// MaxDevices bounds the devices of one registration. Default 64.
	MaxDevices int
}

func (c *PipelineConfig) ensureDefaults() {
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = 8192
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 128
	}
	if c.BatchWait == 0 {
		c.BatchWait = 2 * time.Millisecond
	}
	if c.RatePerNode == 0 {
		c.RatePerNode = 50
	}
	if c.Burst == 0 && c.RatePerNode > 0 {
		c.Burst = 2 * c.RatePerNode
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 5 * time.Minute
	}
	if c.MaxDevices == 0 {
		c.MaxDevices = 64
	}
}

// Validate reports every knob that has no meaning, in field order. It
// judges the values a member runs with: the defaults first take the place
// of zero fields (on a copy; c is not changed), so zero always means the
// default, and no knob may be negative.
func (c *PipelineConfig) Validate() error {
	d := *c
	d.ensureDefaults()
	var errs []error
	for _, k := range []struct {
		name string
		v    int
	}{{"Workers", d.Workers}, {"QueueDepth", d.QueueDepth}, {"MaxBatch", d.MaxBatch},
		{"RatePerNode", d.RatePerNode}, {"Burst", d.Burst}, {"MaxDevices", d.MaxDevices}} {
		if k.v < 0 {
			errs = append(errs, fmt.Errorf("Pipeline.%s must not be negative, got %d", k.name, k.v))
		}
	}
	for _, k := range []struct {
		name string
		v    time.Duration
	}{{"BatchWait", d.BatchWait}, {"MaxClockSkew", d.MaxClockSkew}} {
		if k.v < 0 {
			errs = append(errs, fmt.Errorf("Pipeline.%s must not be negative, got %v", k.name, k.v))
		}
	}
	if d.QueueDepth > 0 && d.MaxBatch > d.QueueDepth {
		errs = append(errs, fmt.Errorf("Pipeline.MaxBatch %d exceeds QueueDepth %d: a batch is taken from the proofs waiting in the queue", d.MaxBatch, d.QueueDepth))
	}
	return errors.Join(errs...)
}

// Field size caps of requests (the gRPC server also caps whole messages).
const (
	maxStringField = 256
	maxProofBytes  = verifier.ProofSize
)

type verifyJob struct {
	proof *verifier.Proof
	pub   verifier.PublicInputs
	ok    chan bool
}

// pipeline checks submissions on the leader, cheapest checks first, and
// verifies proofs in batches on a bounded pool.
type pipeline struct {
	m      *Member
	cfg    PipelineConfig
	jobs   chan verifyJob
	limits *rateLimiter

	mu       sync.Mutex
	inflight map[string]bool // challenge ids with a proof being verified

	// drawSeed draws a commitment's sample seed; drawSeed (crypto/rand)
	// outside tests.
	drawSeed func() [fsm.SampleSeedSize]byte
}

func newPipeline(m *Member) *pipeline {
	c := m.cfg.Pipeline
	return &pipeline{m: m, cfg: c, jobs: make(chan verifyJob, c.QueueDepth), limits: newRateLimiter(c.RatePerNode, c.Burst), inflight: map[string]bool{}, drawSeed: drawSeed}
}

func (p *pipeline) run(ctx context.Context) {
	sem := make(chan struct{}, p.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var first verifyJob
		select {
		case <-ctx.Done():
			return
		case first = <-p.jobs:
		}
		batch := []verifyJob{first}
		timer := time.NewTimer(p.cfg.BatchWait)
	fill:
		for len(batch) < p.cfg.MaxBatch {
			select {
			case j := <-p.jobs:
				batch = append(batch, j)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.verify(batch)
		}()
	}
}

func (p *pipeline) verify(batch []verifyJob) {
	proofs := make([]*verifier.Proof, len(batch))
	pubs := make([]verifier.PublicInputs, len(batch))
	for i, j := range batch {
		proofs[i], pubs[i] = j.proof, j.pub
	}
	bad, err := verifier.VerifyBatch(p.m.cfg.VerifyingKey, proofs, pubs)
	if err != nil {
		// The batch could not be checked at all: fall back to one by one
		// rather than condemn honest proofs.
		for _, j := range batch {
			j.ok <- verifier.Verify(p.m.cfg.VerifyingKey, j.proof, j.pub) == nil
		}
		return
	}
	isBad := make(map[int]bool, len(bad))
	for _, i := range bad {
		isBad[i] = true
	}
	for i, j := range batch {
		j.ok <- !isBad[i]
	}
}

// rateLimiter is a token bucket per node address.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[ethcrypto.Address]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst int) *rateLimiter {
	return &rateLimiter{rate: float64(rate), burst: float64(burst), buckets: map[ethcrypto.Address]*bucket{}}
}

func (r *rateLimiter) allow(a ethcrypto.Address, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[a]
	if !ok {
		if len(r.buckets) > 1_000_000 {
			clear(r.buckets)
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[a] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// checkSigned recovers the signer of a request and compares it with the
// claimed address.
func checkSigned(recover func([32]byte, []byte) (ethcrypto.Address, error), req interface {
	GetAddress() string
	GetSignature() []byte
}, msg proto.Message) (ethcrypto.Address, error) {
	addr, err := ethcrypto.ParseAddress(req.GetAddress())
	if err != nil {
		return addr, fmt.Errorf("%w: address: %w", ErrInvalidRequest, err)
	}
	if len(req.GetSignature()) != ethcrypto.SignatureLen {
		return addr, fmt.Errorf("%w: want a %d-byte signature, got %d bytes", ErrBadSignature, ethcrypto.SignatureLen, len(req.GetSignature()))
	}
	digest, err := truegpuv1.SigningDigest(msg)
	if err != nil {
		return addr, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	got, err := recover(digest, req.GetSignature())
	if err != nil {
		return addr, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if got != addr {
		return addr, fmt.Errorf("%w: signed by %s, not %s", ErrBadSignature, got, addr)
	}
	return addr, nil
}

// admit passes a signed submission from addr on: the node is registered
// (checked in memory, before any state is read for it) and within its rate
// limit.
func (p *pipeline) admit(addr ethcrypto.Address) error {
	if !p.m.fsm.Registered(addr) {
		return fmt.Errorf("%w: %s", ErrUnknownNode, addr)
	}
	if !p.limits.allow(addr, p.m.cfg.Now()) {
		return fmt.Errorf("%w: node %s", ErrRateLimited, addr)
	}
	return nil
}

// Register checks and replicates a node registration.
func (p *pipeline) Register(ctx context.Context, req *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	now := p.m.cfg.Now()
	if len(req.Devices) == 0 || len(req.Devices) > p.cfg.MaxDevices {
		return nil, fmt.Errorf("%w: want 1..%d devices, got %d", ErrTooLarge, p.cfg.MaxDevices, len(req.Devices))
	}
	for i, d := range req.Devices {
		if err := checkDevice(i, d); err != nil {
			return nil, err
		}
	}
	if err := p.m.checkCluster(req.Cluster); err != nil {
		return nil, err
	}
	addr, err := checkSigned(p.m.recovered.Recover, req, req)
	if err != nil {
		return nil, err
	}
	skew := now.Sub(time.UnixMilli(req.TimestampUnixMs))
	if skew > p.cfg.MaxClockSkew || -skew > p.cfg.MaxClockSkew {
		return nil, fmt.Errorf("%w: %v off; check the node's clock", ErrClockSkew, skew.Round(time.Second))
	}
	if err := p.m.checkReplay(req, req.TimestampUnixMs); err != nil {
		return nil, err
	}
	if !p.limits.allow(addr, now) {
		return nil, fmt.Errorf("%w: node %s", ErrRateLimited, addr)
	}
	if err := p.m.admitNew(addr, req, now); err != nil {
		return nil, err
	}
	signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	idx, err := p.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_RegisterNode{
		RegisterNode: &truegpuv1.RegisterNodeCommand{Address: addr[:], Devices: req.Devices, SignedRequest: signed}}})
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.RegisterNodeResponse{Address: addr.String(), AppliedIndex: idx}
	if rec, err := p.m.fsm.Node(addr); err == nil {
		resp.Status = rec.Status
	}
	return resp, nil
}

func checkDevice(i int, d *truegpuv1.Device) error {
	if d.GetFingerprint().GetUuid() == "" {
		return fmt.Errorf("%w: device %d has no UUID", ErrInvalidRequest, i)
	}
	if d.Index != uint32(i) {
		return fmt.Errorf("%w: device %d has index %d; list devices by index from 0", ErrInvalidRequest, i, d.Index)
	}
	fp := d.Fingerprint
	for _, s := range []string{d.ClaimedClass, fp.Uuid, fp.Serial, fp.BoardPartNumber, fp.PciBusId, fp.Name, fp.VbiosVersion, fp.DriverVersion, fp.CcMode} {
		if len(s) > maxStringField {
			return fmt.Errorf("%w: device %d has a field over %d bytes", ErrTooLarge, i, maxStringField)
		}
	}
	if len(fp.UnsupportedFields) > 32 {
		return fmt.Errorf("%w: device %d lists %d unsupported fields", ErrTooLarge, i, len(fp.UnsupportedFields))
	}
	if _, err := gpuclass.Lookup(d.ClaimedClass); err != nil {
		return fmt.Errorf("%w: device %d claims %q", ErrUnknownClass, i, d.ClaimedClass)
	}
	return nil
}

// signedChallenge runs the first checks of a submission about a
// challenge: the signature, the node's registration and rate limit, and
// that the challenge it names is the node's. It returns the challenge.
func (p *pipeline) signedChallenge(req interface {
	proto.Message
	GetAddress() string
	GetSignature() []byte
	GetChallengeId() string
}) (*truegpuv1.ChallengeState, error) {
	addr, err := checkSigned(p.m.recovered.Recover, req, req)
	if err != nil {
		return nil, err
	}
	if err := p.admit(addr); err != nil {
		return nil, err
	}
	return p.openChallenge(req.GetChallengeId(), addr)
}

// openChallenge loads the challenge a submission names and checks that it
// belongs to the node.
func (p *pipeline) openChallenge(idStr string, addr ethcrypto.Address) (*truegpuv1.ChallengeState, error) {
	id, err := truegpuv1.ParseChallengeID(idStr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	cs, err := p.m.fsm.Challenge(id)
	if errors.Is(err, fsm.ErrNotFound) || (err == nil && string(cs.Challenge.Address) != string(addr[:])) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNonce, idStr)
	}
	return cs, err
}

// Commit records a commitment, stamped with the leader's clock at arrival,
// together with a sample seed the leader draws only now: the cells the
// proof must open derive from (root, seed, nonce, node), so the node learns
// them only after its root is on record and cannot grind roots for samples
// that fall on cells it computed. Sending the same root again (a retry
// after a lost answer) returns the recorded seed; another root is refused.
func (p *pipeline) Commit(ctx context.Context, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	arrival := p.m.cfg.Now().UnixMilli()
	if len(req.Root) != 32 {
		return nil, fmt.Errorf("%w: root must be 32 bytes, got %d", ErrInvalidRequest, len(req.Root))
	}
	if len(req.ChallengeId) > 66 {
		return nil, fmt.Errorf("%w: challenge id", ErrTooLarge)
	}
	cs, err := p.signedChallenge(req)
	if err != nil {
		return nil, err
	}
	ch := cs.Challenge
	switch {
	case ch.Timed != nil && len(req.TimedRoot) != 32:
		return nil, fmt.Errorf("%w: the challenge has a timed phase: timed_root must be 32 bytes, got %d", ErrInvalidRequest, len(req.TimedRoot))
	case ch.Timed == nil && len(req.TimedRoot) != 0:
		return nil, fmt.Errorf("%w: the challenge has no timed phase: timed_root must be empty", ErrInvalidRequest)
	case ch.Memory != nil && len(req.TableRoot) != 32:
		return nil, fmt.Errorf("%w: the challenge has a memory phase: table_root must be 32 bytes, got %d", ErrInvalidRequest, len(req.TableRoot))
	case ch.Memory == nil && len(req.TableRoot) != 0:
		return nil, fmt.Errorf("%w: the challenge has no memory phase: table_root must be empty", ErrInvalidRequest)
	}
	signed, err := signedBytes(req)
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.SubmitCommitmentResponse{ReceivedAtUnixMs: arrival, ProofDeadlineUnixMs: ch.ProofDeadlineUnixMs}
	if cs.Outcome == fsm.OutcomeMissed {
		// Expired before the commitment arrived: late, already counted.
		resp.Reason = string(reputation.ReasonCommitmentLate)
		return resp, nil
	}
	if cs.Outcome != fsm.OutcomePending {
		return p.recommitted(cs, req)
	}
	if arrival > ch.CommitDeadlineUnixMs {
		late := &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonCommitmentLate), CommitReceivedAtUnixMs: arrival,
			Detail: fmt.Sprintf("arrived %d ms after the deadline", arrival-ch.CommitDeadlineUnixMs), SignedRequest: signed}
		if _, err := p.decideRecord(ctx, late); err != nil && !errors.Is(err, fsm.ErrConflict) {
			return nil, err
		}
		resp.Reason = string(reputation.ReasonCommitmentLate)
		return resp, nil
	}
	seed := p.drawSeed()
	_, err = p.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: arrival, Body: &truegpuv1.Command_RecordCommitment{
		RecordCommitment: &truegpuv1.RecordCommitmentCommand{ChallengeId: ch.Id, Root: req.Root, ReceivedAtUnixMs: arrival, SampleSeed: seed[:],
			TimedRoot: req.TimedRoot, TableRoot: req.TableRoot, SignedRequest: signed}}})
	switch {
	case errors.Is(err, fsm.ErrConflict):
		// Another copy of the request won the race: answer as it was.
		if cs, rerr := p.m.fsm.Challenge(ch.Id); rerr == nil {
			return p.recommitted(cs, req)
		}
		return nil, fmt.Errorf("%w: challenge %s", ErrNonceReused, req.ChallengeId)
	case errors.Is(err, fsm.ErrLate):
		resp.Reason = string(reputation.ReasonCommitmentLate)
		return resp, nil
	case err != nil:
		return nil, err
	}
	resp.Accepted, resp.SampleSeed = true, seed[:]
	if ch.Memory != nil {
		resp.WalkDeadlineUnixMs = arrival + int64(ch.Memory.WalkDeadlineMs)
	}
	return resp, nil
}

// recommitted answers a commitment for a challenge that already has one:
// the same root gets the recorded answer and seed again, anything else is
// refused.
func (p *pipeline) recommitted(cs *truegpuv1.ChallengeState, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	if cs.Outcome == fsm.OutcomeCommitted && bytes.Equal(cs.Root, req.Root) && bytes.Equal(cs.TimedRoot, req.TimedRoot) && bytes.Equal(cs.TableRoot, req.TableRoot) {
		return &truegpuv1.SubmitCommitmentResponse{Accepted: true, ReceivedAtUnixMs: cs.ReceivedAtUnixMs,
			ProofDeadlineUnixMs: cs.Challenge.ProofDeadlineUnixMs, SampleSeed: cs.SampleSeed, WalkDeadlineUnixMs: fsm.WalkDeadline(cs)}, nil
	}
	return nil, fmt.Errorf("%w: challenge %s is %s", ErrNonceReused, req.ChallengeId, cs.Outcome)
}

// Walk records the walk root of a committed challenge's memory phase,
// stamped with the leader's clock at arrival, together with a check seed
// the leader draws only now: the walk transitions the proof must open
// derive from (walk root, check seed), so the node learns them only after
// its walk is on record. A walk root after the walk deadline (the
// commitment's recorded arrival plus the phase's walk deadline) is a
// WALK_LATE rejection. Sending the same walk root again returns the
// recorded seed; another root is refused.
func (p *pipeline) Walk(ctx context.Context, req *truegpuv1.SubmitWalkRequest) (*truegpuv1.SubmitWalkResponse, error) {
	arrival := p.m.cfg.Now().UnixMilli()
	if len(req.WalkRoot) != 32 {
		return nil, fmt.Errorf("%w: walk_root must be 32 bytes, got %d", ErrInvalidRequest, len(req.WalkRoot))
	}
	if len(req.ChallengeId) > 66 {
		return nil, fmt.Errorf("%w: challenge id", ErrTooLarge)
	}
	cs, err := p.signedChallenge(req)
	if err != nil {
		return nil, err
	}
	ch := cs.Challenge
	if ch.Memory == nil {
		return nil, fmt.Errorf("%w: challenge %s has no memory phase", ErrInvalidRequest, req.ChallengeId)
	}
	signed, err := signedBytes(req)
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.SubmitWalkResponse{ReceivedAtUnixMs: arrival, ProofDeadlineUnixMs: ch.ProofDeadlineUnixMs}
	switch {
	case cs.Outcome == fsm.OutcomePending:
		return nil, fmt.Errorf("%w: %s: commit before the walk", ErrNotCommitted, req.ChallengeId)
	case cs.Outcome == fsm.OutcomeCommitted && len(cs.WalkRoot) != 0:
		if bytes.Equal(cs.WalkRoot, req.WalkRoot) {
			resp.Accepted, resp.ReceivedAtUnixMs, resp.CheckSeed = true, cs.WalkReceivedAtUnixMs, cs.CheckSeed
			return resp, nil
		}
		return nil, fmt.Errorf("%w: challenge %s already has another walk root", ErrNonceReused, req.ChallengeId)
	case cs.Outcome == fsm.OutcomeRejected && cs.GetVerdict().GetReason() == string(reputation.ReasonWalkLate), cs.Outcome == fsm.OutcomeMissed:
		resp.Reason = string(reputation.ReasonWalkLate)
		return resp, nil
	case cs.Outcome != fsm.OutcomeCommitted:
		return nil, fmt.Errorf("%w: challenge %s is %s", ErrNonceReused, req.ChallengeId, cs.Outcome)
	}
	if dl := fsm.WalkDeadline(cs); arrival > dl {
		late := &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonWalkLate), WalkReceivedAtUnixMs: arrival,
			Detail: fmt.Sprintf("walk root arrived %d ms after the deadline (%d ms after the commitment; allowed %d ms)", arrival-dl, arrival-cs.ReceivedAtUnixMs, ch.Memory.WalkDeadlineMs), SignedRequest: signed}
		if _, err := p.decideRecord(ctx, late); err != nil && !errors.Is(err, fsm.ErrConflict) {
			return nil, err
		}
		resp.Reason = string(reputation.ReasonWalkLate)
		return resp, nil
	}
	seed := drawSeed()
	_, err = p.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: arrival, Body: &truegpuv1.Command_RecordWalk{
		RecordWalk: &truegpuv1.RecordWalkCommand{ChallengeId: ch.Id, WalkRoot: req.WalkRoot, ReceivedAtUnixMs: arrival, CheckSeed: seed[:], SignedRequest: signed}}})
	switch {
	case errors.Is(err, fsm.ErrConflict):
		if cs, rerr := p.m.fsm.Challenge(ch.Id); rerr == nil && bytes.Equal(cs.WalkRoot, req.WalkRoot) {
			resp.Accepted, resp.ReceivedAtUnixMs, resp.CheckSeed = true, cs.WalkReceivedAtUnixMs, cs.CheckSeed
			return resp, nil
		}
		return nil, fmt.Errorf("%w: challenge %s", ErrNonceReused, req.ChallengeId)
	case errors.Is(err, fsm.ErrLate):
		resp.Reason = string(reputation.ReasonWalkLate)
		return resp, nil
	case err != nil:
		return nil, err
	}
	resp.Accepted, resp.CheckSeed = true, seed[:]
	return resp, nil
}

// drawSeed returns a fresh sample seed from the leader's operating-system
// random source. Like nonces, it reaches the state only inside a command.
func drawSeed() [fsm.SampleSeedSize]byte {
	var s [fsm.SampleSeedSize]byte
	rand.Read(s[:])
	return s
}

// decideRecord stamps a verdict with the leader's clock and proposes it.
func (p *pipeline) decideRecord(ctx context.Context, v *truegpuv1.VerdictRecord) (*truegpuv1.Verdict, error) {
	now := p.m.cfg.Now().UnixMilli()
	v.DecidedAtUnixMs = now
	idx, err := p.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now, Body: &truegpuv1.Command_RecordVerdicts{
		RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}}}})
	if err != nil {
		return nil, err
	}
	return p.m.verdictView(v.ChallengeId, idx)
}

// Proof checks a proof submission and returns the verdict.
func (p *pipeline) Proof(ctx context.Context, req *truegpuv1.SubmitProofRequest) (*truegpuv1.SubmitProofResponse, error) {
	now := p.m.cfg.Now().UnixMilli()
	if len(req.Proof) > maxProofBytes*2 || len(req.ChallengeId) > 66 {
		return nil, fmt.Errorf("%w: proof of %d bytes (a proof is %d)", ErrTooLarge, len(req.Proof), maxProofBytes)
	}
	if len(req.TimedOpenings) > maxTimedOpeningsBytes {
		return nil, fmt.Errorf("%w: timed openings of %d bytes (at most %d)", ErrTooLarge, len(req.TimedOpenings), maxTimedOpeningsBytes)
	}
	if len(req.WalkOpenings) > maxWalkOpeningsBytes {
		return nil, fmt.Errorf("%w: walk openings of %d bytes (at most %d)", ErrTooLarge, len(req.WalkOpenings), maxWalkOpeningsBytes)
	}
	cs, err := p.signedChallenge(req)
	if err != nil {
		return nil, err
	}
	switch cs.Outcome {
	case fsm.OutcomePending:
		return nil, fmt.Errorf("%w: %s", ErrNotCommitted, req.ChallengeId)
	case fsm.OutcomeCommitted:
	case fsm.OutcomeMissed:
		return nil, fmt.Errorf("%w: challenge %s expired without a proof", ErrProofLate, req.ChallengeId)
	default:
		return nil, fmt.Errorf("%w: challenge %s is already %s", ErrNonceReused, req.ChallengeId, cs.Outcome)
	}
	ch := cs.Challenge
	if now > ch.ProofDeadlineUnixMs {
		return nil, fmt.Errorf("%w: %d ms late", ErrProofLate, now-ch.ProofDeadlineUnixMs)
	}
	if ch.Memory != nil && len(cs.WalkRoot) == 0 {
		return nil, fmt.Errorf("%w: %s: the memory phase's walk root is not recorded; submit the walk first", ErrNotCommitted, req.ChallengeId)
	}
	if ch.Memory == nil && len(req.WalkOpenings) != 0 {
		return nil, fmt.Errorf("%w: the challenge has no memory phase: walk_openings must be empty", ErrInvalidRequest)
	}
	key := string(ch.Id)
	p.mu.Lock()
	if p.inflight[key] {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: a proof for %s is being verified", ErrNonceReused, req.ChallengeId)
	}
	p.inflight[key] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.inflight, key)
		p.mu.Unlock()
	}()
	var v *truegpuv1.Verdict
	proof, derr := verifier.DecodeProof(req.Proof)
	signed, err := signedBytes(req)
	if err != nil {
		return nil, err
	}
	reject := func(reason, detail string) (*truegpuv1.Verdict, error) {
		// The proof and openings travel inside the signed request only;
		// Apply copies them out after checking the signature.
		return p.decideRecord(ctx, &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: reason, Detail: detail, SignedRequest: signed})
	}
	if ch.Timed == nil && len(req.TimedOpenings) != 0 {
		return nil, fmt.Errorf("%w: the challenge has no timed phase: timed_openings must be empty", ErrInvalidRequest)
	}
	if reason, detail := nativeChecks(cs, req); reason != "" {
		v, err = reject(reason, detail)
	} else {
		v, err = p.checkProof(ctx, cs, proof, derr, req, signed)
	}
	if errors.Is(err, fsm.ErrConflict) {
		return nil, fmt.Errorf("%w: %s", ErrNonceReused, req.ChallengeId)
	}
	if err != nil {
		return nil, err
	}
	return &truegpuv1.SubmitProofResponse{Verdict: v}, nil
}

// maxTimedOpeningsBytes bounds a timed openings blob: the header and
// Samples openings at the deepest tree (prover/timed's encoding).
const maxTimedOpeningsBytes = 4 + 1 + 32 + 2 + timed.Samples*(8+timed.LeafCells+1+timed.MaxDepth*32)

// nativeChecks checks a proof submission's openings natively, each once
// and in order: the timed phase's, then the memory phase's walk. It
// returns the rejection of the first that fails, or "" when all pass.
func nativeChecks(cs *truegpuv1.ChallengeState, req *truegpuv1.SubmitProofRequest) (reason, detail string) {
	ch := cs.Challenge
	if ch.Timed != nil {
		if len(req.TimedOpenings) == 0 {
			return string(reputation.ReasonTimedInvalid), "the challenge has a timed phase and the proof carries no openings of it"
		}
		if err := CheckTimed(cs, req.TimedOpenings); err != nil {
			return string(reputation.ReasonTimedInvalid), err.Error()
		}
	}
	if ch.Memory != nil {
		if len(req.WalkOpenings) == 0 {
			return string(reputation.ReasonWalkInvalid), "the challenge has a memory phase and the proof carries no openings of its walk"
		}
		if err := CheckMemory(cs, req.WalkOpenings); err != nil {
			return string(reputation.ReasonWalkInvalid), err.Error()
		}
	}
	return "", ""
}

// maxWalkOpeningsBytes bounds a walk openings blob: the header and Checks
// checks, each a block with its path, a presence flag and two state
// leaves with theirs, at the deepest trees (prover/memwalk's encoding).
const maxWalkOpeningsBytes = 4 + 1 + 32 + 32 + 2 + memwalk.Checks*(memwalk.BlockBytes+1+memwalk.MaxDepth*32+1+2*(64+1+memwalk.MaxDepth*32))

// signedBytes is the node's signed request as the replicated commands
// carry it (fsm checks the signature again in Apply).
func signedBytes(req proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: the request cannot be encoded", ErrInvalidRequest)
	}
	return b, nil
}

// CheckTimed checks the openings of a committed challenge's timed phase
// against its recorded timed root and sample seed (prover/timed.Verify).
// The error says what failed, in words a node operator can act on.
func CheckTimed(cs *truegpuv1.ChallengeState, openings []byte) error {
	tp := cs.Challenge.Timed
	if tp == nil {
		return errors.New("the challenge has no timed phase")
	}
	if len(cs.TimedRoot) != 32 || len(cs.SampleSeed) != timed.SeedSize || len(cs.Challenge.Nonce) != 32 {
		return errors.New("the challenge has no recorded timed commitment")
	}
	return timed.Verify(timed.Spec{M: tp.M, N: tp.N, K: tp.K}, [32]byte(cs.Challenge.Nonce), [32]byte(cs.TimedRoot), [timed.SeedSize]byte(cs.SampleSeed), openings)
}

// CheckMemory checks the walk openings of a challenge's memory phase
// against its recorded table root, walk seed (the sample seed), walk root
// and check seed (prover/memwalk.Verify). The error says what failed, in
// words a node operator can act on.
func CheckMemory(cs *truegpuv1.ChallengeState, openings []byte) error {
	mp := cs.Challenge.Memory
	if mp == nil {
		return errors.New("the challenge has no memory phase")
	}
	if len(cs.TableRoot) != 32 || len(cs.WalkRoot) != 32 || len(cs.SampleSeed) != memwalk.SeedSize ||
		len(cs.CheckSeed) != memwalk.SeedSize || len(cs.Challenge.Nonce) != 32 {
		return errors.New("the challenge has no recorded walk")
	}
	return memwalk.Verify(memwalk.Spec{Blocks: mp.Blocks, Lanes: mp.Lanes, Steps: mp.Steps}, [32]byte(cs.Challenge.Nonce), [32]byte(cs.TableRoot),
		[memwalk.SeedSize]byte(cs.SampleSeed), [32]byte(cs.WalkRoot), [memwalk.SeedSize]byte(cs.CheckSeed), openings)
}

// checkProof verifies the SNARK proof of a committed challenge and
// records the verdict.
func (p *pipeline) checkProof(ctx context.Context, cs *truegpuv1.ChallengeState, proof *verifier.Proof, derr error, req *truegpuv1.SubmitProofRequest, signed []byte) (*truegpuv1.Verdict, error) {
	ch := cs.Challenge
	decide := func(accepted bool, reason, detail string) (*truegpuv1.Verdict, error) {
		return p.decideRecord(ctx, &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Accepted: accepted, Reason: reason, Detail: detail, SignedRequest: signed})
	}
	var v *truegpuv1.Verdict
	var err error
	switch {
	case derr != nil:
		v, err = decide(false, string(reputation.ReasonProofMalformed), "proof does not decode")
	case ch.Profile != p.m.cfg.Profile.ID():
		v, err = decide(false, string(reputation.ReasonInputMismatch), "challenge profile has no verifying key here")
	default:
		pub, perr := p.m.publicInputs(cs)
		if perr != nil {
			v, err = decide(false, string(reputation.ReasonProofInvalid), "committed root is not a field element")
			break
		}
		job := verifyJob{proof: proof, pub: pub, ok: make(chan bool, 1)}
		select {
		case p.jobs <- job:
		default:
			return nil, fmt.Errorf("%w: %d proofs waiting for verification", ErrOverloaded, len(p.jobs))
		}
		var ok bool
		select {
		case ok = <-job.ok:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ok {
			v, err = decide(true, "", "")
		} else {
			v, err = decide(false, string(reputation.ReasonProofInvalid), "proof does not verify")
		}
	}
	return v, err
}

// verdictView builds the API view of a challenge's verdict.
func (m *Member) verdictView(id []byte, idx uint64) (*truegpuv1.Verdict, error) {
	cs, err := m.fsm.Challenge(id)
	if err != nil {
		return nil, err
	}
	ch := cs.Challenge
	v := &truegpuv1.Verdict{ChallengeId: truegpuv1.FormatChallengeID(id), Address: ethcrypto.Address(ch.Address).String(),
		CommitLatencyMs: latencyMs(ch.IssuedAtUnixMs, cs.ReceivedAtUnixMs), ExpectedLatencyMs: ch.ExpectedLatencyMs, AppliedIndex: idx}
	v.WalkLatencyMs, v.WalkExpectedLatencyMs = fsm.WalkLatency(cs)
	if cs.Verdict != nil {
		v.Accepted, v.Reason, v.Detail, v.DecidedAtUnixMs = cs.Verdict.Accepted, cs.Verdict.Reason, cs.Verdict.Detail, cs.Verdict.DecidedAtUnixMs
		v.AppliedIndex = cs.VerdictIndex
	}
	return v, nil
}

func latencyMs(from, to int64) uint64 {
	if to <= from {
		return 0
	}
	return uint64(to - from)
}
