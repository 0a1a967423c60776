package reputation

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// MaxBP is the largest value in basis points: 10000 = 100%.
const MaxBP = 10000

// Unit is the fixed-point weight of one piece of evidence: evidence weights
// are counted in thousandths of an event ("milli-events").
const Unit = 1000

// evidenceLimit caps decayed evidence so sums never overflow.
const evidenceLimit = uint64(1) << 48

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrInvalidEvent reports an event that cannot be applied (missing
	// fields, zero expectations, malformed reason codes). The state is left
	// unchanged; the leader should have refused it before proposing.
	ErrInvalidEvent = errors.New("reputation: invalid event")
	// ErrInvalidParams reports inconsistent model parameters.
	ErrInvalidParams = errors.New("reputation: invalid parameters")
	// ErrInvalidState reports bytes that do not decode to a canonical NodeState.
	ErrInvalidState = errors.New("reputation: invalid node state encoding")
)

// Dimension is one axis of the score.
type Dimension uint8

// The four dimensions. Their order is part of the state encoding.
const (
	// Identity: the node's devices are unique, anchored at first
	// verification and keep a consistent fingerprint.
	Identity Dimension = iota
	// Capacity: the node answers within the time its claimed class needs.
	Capacity
	// Liveness: the node answers challenges before their deadlines.
	Liveness
	// Correctness: the node's proofs verify.
	Correctness
	// NumDimensions is the number of dimensions.
	NumDimensions
)

var dimensionNames = [NumDimensions]string{"identity", "capacity", "liveness", "correctness"}

func (d Dimension) String() string {
	if d < NumDimensions {
		return dimensionNames[d]
	}
	return fmt.Sprintf("dimension(%d)", uint8(d))
}

// Status is a node's standing. The numeric values are published in epoch
// report leaves and read by contracts; they never change.
type Status uint8

// Statuses, from the most to the least favourable for rewards.
const (
	// StatusUnknown is the status of an address the model has no state for.
	StatusUnknown Status = 0
	// StatusProbation: not enough evidence yet, or score below the trusted bar.
	StatusProbation Status = 1
	// StatusTrusted: enough evidence in every dimension and a high score.
	StatusTrusted Status = 2
	// StatusSuspect: some dimension shows a failure rate above tolerance.
	StatusSuspect Status = 3
	// StatusRejected: duplicated identity, or a dimension failing badly.
	// A rejected node's published score is 0.
	StatusRejected Status = 4
)

var statusNames = []string{"unknown", "probation", "trusted", "suspect", "rejected"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus is the inverse of Status.String.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("reputation: unknown status %q (want one of %s)", s, strings.Join(statusNames, ", "))
}

// Reason is a machine-readable code explaining a penalty or a status.
// Codes are upper-case ASCII with underscores and digits, at most 64 bytes.
type Reason string

// Reason codes attached to penalties and findings.
const (
	// Identity.
	ReasonIdentityDuplicate Reason = "IDENTITY_DUPLICATE"
	// ReasonIdentityContested: the node shares a device identity with
	// another node and the storms have not yet decided who holds it. A
	// newcomer cannot become trusted while it lasts; an incumbent keeps its
	// standing.
	ReasonIdentityContested Reason = "IDENTITY_CONTESTED"
	// ReasonIdentityDuplicateLost: the node could not answer for a shared
	// device identity while another holder did (or while nobody did, for a
	// newcomer): it loses the identity.
	ReasonIdentityDuplicateLost      Reason = "IDENTITY_DUPLICATE_LOST"
	ReasonIdentityUUIDChanged        Reason = "IDENTITY_UUID_CHANGED"
	ReasonIdentityFingerprintChanged Reason = "IDENTITY_FINGERPRINT_CHANGED"
	ReasonIdentityUnknownDevice      Reason = "IDENTITY_UNKNOWN_DEVICE"
	// Capacity.
	ReasonCapacitySlow Reason = "CAPACITY_SLOW"
	// Liveness.
	ReasonLivenessMissed Reason = "LIVENESS_MISSED"
	// Correctness: rejected verdicts carry the verifier's own code; these
	// are the usual ones.
	ReasonProofInvalid   Reason = "PROOF_INVALID"
	ReasonProofMalformed Reason = "PROOF_MALFORMED"
	ReasonInputMismatch  Reason = "PUBLIC_INPUT_MISMATCH"
	ReasonCommitmentLate Reason = "COMMITMENT_LATE"
	// ReasonTimedInvalid: the openings of the timed phase do not match its
	// commitment or a sampled cell is wrong (docs/PROTOCOL.md, "The timed
	// phase"): the node committed to results it did not compute.
	ReasonTimedInvalid Reason = "TIMED_CHECK_FAILED"
	// ReasonWalkLate: the walk root of the memory phase arrived after its
	// deadline, or never: the deadline is sized from the claimed class's
	// memory and bandwidth, so it counts against capacity.
	ReasonWalkLate Reason = "WALK_LATE"
	// ReasonWalkInvalid: the openings of the memory phase's walk do not
	// match its commitments (docs/PROTOCOL.md, "The memory phase").
	ReasonWalkInvalid Reason = "WALK_CHECK_FAILED"
	// ReasonProofMissing: the node committed to a root and then sent no
	// proof before the proof deadline. A node that cannot open its own
	// commitment is what a partial or faked computation looks like (it
	// abandons the challenge when the samples land on cells it never
	// computed), so it counts against correctness like an invalid proof,
	// not against liveness.
	ReasonProofMissing     Reason = "PROOF_MISSING"
	ReasonVerdictRejected  Reason = "VERDICT_REJECTED"
	ReasonEvidenceTooThin  Reason = "EVIDENCE_INSUFFICIENT"
	ReasonScoreBelowTrust  Reason = "SCORE_BELOW_TRUSTED"
	ReasonDimensionFailing Reason = "DIMENSION_FAILING"
	ReasonDimensionWeak    Reason = "DIMENSION_WEAK"
)

// Valid reports whether r is a well-formed reason code.
func (r Reason) Valid() bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Evidence references are strings with a type prefix, for example
// "challenge:9f3a…", "verdict:17", "node:0xAbC…", "device:GPU-…",
// "identity:uuid:GPU-…", "timing:1250ms/1000ms". They are part of the
// state format (penalties and findings store them); readers split them with
// SplitRef.
const (
	RefChallenge = "challenge:"
	RefVerdict   = "verdict:"
	RefNode      = "node:"
	RefDevice    = "device:"
	RefIdentity  = "identity:"
	RefTiming    = "timing:"
	// RefTypicalTiming is the node's median latency ratio, in basis
	// points of the expectation, that a capacity penalty was judged on.
	RefTypicalTiming = "typical:"
)

var refKinds = []string{RefChallenge, RefVerdict, RefNode, RefDevice, RefIdentity, RefTiming, RefTypicalTiming}

// SplitRef splits an evidence reference into its type prefix (one of the
// Ref constants) and the value after it. ok is false for a reference with
// none of the known prefixes.
func SplitRef(ref string) (kind, value string, ok bool) {
	for _, k := range refKinds {
		if v, found := strings.CutPrefix(ref, k); found {
			return k, v, true
		}
	}
	return "", ref, false
}

// Device is a registered device's identity as the model sees it.
type Device struct {
	// UUID is the device UUID reported by NVML (e.g. "GPU-…").
	UUID string
	// Fingerprint is a digest of the stable fingerprint fields (serial,
	// board and PCI ids, name, memory, VBIOS, compute capability). Fields
	// that change legitimately (driver version, clocks) must not be in it.
	Fingerprint [32]byte
}

// EventKind says what happened.
type EventKind uint8

// Event kinds. The numeric values are part of the state encoding (penalties
// record them) and are never reused.
const (
	// EventRegistered: the node (re)registered Devices.
	EventRegistered EventKind = 1
	// EventVerdictAccepted: the proof for Challenge on Device verified and the
	// commitment arrived in ElapsedMs against the class expectation
	// ExpectedMs.
	EventVerdictAccepted EventKind = 2
	// EventVerdictRejected: the verdict for Challenge failed with Reason.
	// COMMITMENT_LATE and WALK_LATE count against capacity; every other
	// reason against correctness.
	EventVerdictRejected EventKind = 3
	// EventChallengeMissed: no commitment for Challenge before its deadline.
	EventChallengeMissed EventKind = 4
	// EventDuplicateIdentity: the device identity Identity is presented by
	// all of Nodes (this node included), by this node's device Device (""
	// when unknown). Applied to every one of them. It opens a contest, not a
	// conviction: see EventDuplicateDecided.
	EventDuplicateIdentity EventKind = 5
	// EventDuplicateResolved: Identity is no longer shared, or this node won
	// the contest for it.
	EventDuplicateResolved EventKind = 6
	// EventDeviceChanged: Device now reports Devices[0] (a new UUID resets
	// trust; the same UUID with a new fingerprint is penalised).
	EventDeviceChanged EventKind = 7
	// EventDuplicateDecided: the contest for Identity was decided against
	// this node on the evidence of its challenges (DecideConflict): Reason is
	// IDENTITY_DUPLICATE_LOST (it could not answer) or IDENTITY_DUPLICATE
	// (it answered as well as another holder: a clone pair).
	EventDuplicateDecided EventKind = 8
)

var eventNames = map[EventKind]string{
	EventRegistered:        "registered",
	EventVerdictAccepted:   "verdict-accepted",
	EventVerdictRejected:   "verdict-rejected",
	EventChallengeMissed:   "challenge-missed",
	EventDuplicateIdentity: "duplicate-identity",
	EventDuplicateResolved: "duplicate-resolved",
	EventDeviceChanged:     "device-changed",
	EventDuplicateDecided:  "duplicate-decided",
}

func (k EventKind) String() string {
	if n, ok := eventNames[k]; ok {
		return n
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one input to the model. Only the fields of its Kind are read.
type Event struct {
	Kind EventKind
	// At is the event time in unix milliseconds, stamped by the leader.
	// Events older than the state's last update are applied without decay.
	At uint64
	// Challenge and Verdict identify the evidence (verdict kinds, missed).
	Challenge string
	Verdict   string
	// Device is the UUID of the device concerned (verdicts, missed,
	// device-changed).
	Device string
	// Devices lists the devices of a registration, or the new identity of a
	// device-changed event.
	Devices []Device
	// ElapsedMs and ExpectedMs are the commitment latency and the claimed
	// class's expected latency (accepted verdicts), or for a late answer
	// (COMMITMENT_LATE, WALK_LATE) its measured latency and expectation
	// with DeadlineMs, the latency its deadline allowed; zero when the
	// answer never came.
	ElapsedMs, ExpectedMs, DeadlineMs uint64
	// Reason is the rejection code (rejected verdicts).
	Reason Reason
	// Identity and Nodes describe a duplicated identity (duplicate kinds).
	Identity string
	Nodes    []ethcrypto.Address
}

const maxRefLen = 128

func validRef(s string, required bool) bool {
	if s == "" {
		return !required
	}
	return len(s) <= maxRefLen
}

// Validate reports whether the event is well-formed.
func (ev *Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidEvent, ev.Kind, fmt.Sprintf(format, args...))
	}
	if !validRef(ev.Challenge, false) || !validRef(ev.Verdict, false) || !validRef(ev.Device, false) || !validRef(ev.Identity, false) {
		return bad("reference longer than %d bytes", maxRefLen)
	}
	switch ev.Kind {
	case EventRegistered:
		if len(ev.Devices) == 0 || len(ev.Devices) > MaxDevices {
			return bad("want 1..%d devices, got %d", MaxDevices, len(ev.Devices))
		}
		seen := map[string]bool{}
		for _, d := range ev.Devices {
			if d.UUID == "" || len(d.UUID) > maxRefLen {
				return bad("device UUID empty or longer than %d bytes", maxRefLen)
			}
			if seen[d.UUID] {
				return bad("device %q listed twice", d.UUID)
			}
			seen[d.UUID] = true
		}
	case EventVerdictAccepted:
		if ev.Challenge == "" || ev.ExpectedMs == 0 {
			return bad("challenge id and a non-zero class expectation are required")
		}
	case EventVerdictRejected:
		if ev.Challenge == "" || !ev.Reason.Valid() {
			return bad("challenge id and a reason code (A-Z, 0-9, _) are required, got reason %q", ev.Reason)
		}
	case EventChallengeMissed:
		if ev.Challenge == "" {
			return bad("challenge id is required")
		}
	case EventDuplicateIdentity:
		if ev.Identity == "" || len(ev.Nodes) < 2 || len(ev.Nodes) > maxConflictNodes {
			return bad("identity and 2..%d nodes are required, got %d nodes", maxConflictNodes, len(ev.Nodes))
		}
	case EventDuplicateResolved:
		if ev.Identity == "" {
			return bad("identity is required")
		}
	case EventDuplicateDecided:
		if ev.Identity == "" || (ev.Reason != ReasonIdentityDuplicateLost && ev.Reason != ReasonIdentityDuplicate) {
			return bad("identity and a reason of %s or %s are required, got reason %q", ReasonIdentityDuplicateLost, ReasonIdentityDuplicate, ev.Reason)
		}
	case EventDeviceChanged:
		if ev.Device == "" || len(ev.Devices) != 1 || ev.Devices[0].UUID == "" || len(ev.Devices[0].UUID) > maxRefLen {
			return bad("the old device UUID and exactly one new device are required")
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidEvent, ev.Kind)
	}
	return nil
}

// Params are the model's parameters. They are part of the feed's config
// digest: every replica must use the same values.
type Params struct {
	// HalfLifeMs is the half-life of evidence in milliseconds.
	// Default 7 days.
	HalfLifeMs uint64
	// ConfidenceK is the pessimistic pseudo-evidence, in milli-events, that
	// every dimension score is shrunk by: effective = P / (P + N + K).
	// Default 10 events (10000).
	ConfidenceK uint64
	// Weights of identity, capacity, liveness and correctness in the overall
	// score. Default 1, 2, 3, 4.
	Weights [NumDimensions]uint32
	// InvalidWeight is the negative correctness evidence of a rejected
	// verdict, in milli-events. Default 5 events.
	InvalidWeight uint64
	// MissWeight is the negative liveness evidence of a missed challenge.
	// Default 1 event.
	MissWeight uint64
	// FingerprintWeight is the negative identity evidence of a changed
	// fingerprint on an unchanged UUID. Default 3 events.
	FingerprintWeight uint64
	// SlackBP is how far above the tolerance a node's typical answer
	// still earns partial capacity credit, in basis points of the
	// expectation. Default 5000.
	SlackBP uint32
	// ToleranceBP is how far above the class expectation a node's typical
	// answer (the median of its last TimingWindow latencies, each relative
	// to its expectation) still earns full capacity credit, in basis
	// points. Default 2500: the deadline's margin on device time
	// (gpuclass.TimedMarginPercent), so an answer the deadline admits is
	// not also penalised for being slow unless it is typical of the node.
	ToleranceBP uint32
	// TrustedScoreBP is the overall score needed for StatusTrusted.
	// Default 7000.
	TrustedScoreBP uint32
	// TrustedConfidenceBP is the confidence W/(W+K) every dimension needs
	// for StatusTrusted. Default 6000 (15 events at K = 10).
	TrustedConfidenceBP uint32
	// SuspectRateBP: a dimension whose success rate P/(P+N) is below this,
	// with at least SuspectMinNeg negative evidence, makes the node suspect.
	// Default 8000.
	SuspectRateBP uint32
	// SuspectMinNeg in milli-events. Default 1 event.
	SuspectMinNeg uint64
	// RejectRateBP: a dimension whose success rate is below this, with at
	// least RejectMinNeg negative evidence, rejects the node. Default 3000.
	RejectRateBP uint32
	// RejectMinNeg in milli-events. Default 3 events.
	RejectMinNeg uint64
	// RejectCorrectnessBP is the stricter reject bar of the correctness
	// dimension: an exact integer workload never yields an invalid proof on
	// honest hardware, so failing half the time is disqualifying.
	// Default 5000.
	RejectCorrectnessBP uint32
	// MaxPenalties bounds the penalty log kept per node (most recent kept).
	// Default 32.
	MaxPenalties uint32
}

// DefaultParams returns the documented defaults (docs/REPUTATION.md).
func DefaultParams() Params {
	return Params{
		HalfLifeMs:          7 * 24 * 3600 * 1000,
		ConfidenceK:         10 * Unit,
		Weights:             [NumDimensions]uint32{1, 2, 3, 4},
		InvalidWeight:       5 * Unit,
		MissWeight:          1 * Unit,
		FingerprintWeight:   3 * Unit,
		SlackBP:             5000,
		ToleranceBP:         2500,
		TrustedScoreBP:      7000,
		TrustedConfidenceBP: 6000,
		SuspectRateBP:       8000,
		SuspectMinNeg:       1 * Unit,
		RejectRateBP:        3000,
		RejectMinNeg:        3 * Unit,
		RejectCorrectnessBP: 5000,
		MaxPenalties:        32,
	}
}

// Validate reports every inconsistency at once.
func (p *Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidParams, fmt.Sprintf(format, args...)))
	}
	if p.HalfLifeMs == 0 {
		bad("HalfLifeMs must be positive")
	}
	if p.ConfidenceK == 0 || p.ConfidenceK > evidenceLimit {
		bad("ConfidenceK must be in 1..%d milli-events, got %d", evidenceLimit, p.ConfidenceK)
	}
	var sum uint64
	for _, w := range p.Weights {
		sum += uint64(w)
	}
	if sum == 0 || sum > 1<<20 {
		bad("Weights must sum to 1..%d, got %d", 1<<20, sum)
	}
	for name, w := range map[string]uint64{"InvalidWeight": p.InvalidWeight, "MissWeight": p.MissWeight, "FingerprintWeight": p.FingerprintWeight} {
		if w == 0 || w > 1000*Unit {
			bad("%s must be in 1..%d milli-events, got %d", name, 1000*Unit, w)
		}
	}
	if p.ToleranceBP > 10*MaxBP {
		bad("ToleranceBP must be at most %d, got %d", 10*MaxBP, p.ToleranceBP)
	}
	if p.SlackBP > 10*MaxBP {
		bad("SlackBP must be at most %d, got %d", 10*MaxBP, p.SlackBP)
	}
	for name, v := range map[string]uint32{"TrustedScoreBP": p.TrustedScoreBP, "TrustedConfidenceBP": p.TrustedConfidenceBP, "SuspectRateBP": p.SuspectRateBP, "RejectRateBP": p.RejectRateBP, "RejectCorrectnessBP": p.RejectCorrectnessBP} {
		if v > MaxBP {
			bad("%s must be at most %d, got %d", name, MaxBP, v)
		}
	}
	if p.RejectRateBP > p.SuspectRateBP {
		bad("RejectRateBP (%d) must not exceed SuspectRateBP (%d)", p.RejectRateBP, p.SuspectRateBP)
	}
	if p.RejectCorrectnessBP < p.RejectRateBP {
		bad("RejectCorrectnessBP (%d) must not be below RejectRateBP (%d)", p.RejectCorrectnessBP, p.RejectRateBP)
	}
	if p.MaxPenalties == 0 || p.MaxPenalties > 1024 {
		bad("MaxPenalties must be in 1..1024, got %d", p.MaxPenalties)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Model applies events to node states under fixed parameters. It is
// immutable and safe for concurrent use.
type Model struct {
	p Params
}

// NewModel validates p and returns a model.
func NewModel(p Params) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Model{p: p}, nil
}

// Params returns the model's parameters.
func (m *Model) Params() Params { return m.p }

// Evidence is a dimension's decayed positive and negative evidence in
// milli-events.
type Evidence struct {
	Pos, Neg uint64
}

// Penalty is one recorded piece of negative evidence, with why and what
// proves it.
type Penalty struct {
	At        uint64
	Dimension Dimension
	Reason    Reason
	// Weight is the negative evidence added, in milli-events (0 for a
	// reset or a flag).
	Weight uint64
	// Evidence are typed references ("challenge:…", "verdict:…", "node:…").
	Evidence []string
}

// ConflictOutcome is how a contest for a shared identity ended for a node.
type ConflictOutcome uint8

// Conflict outcomes. The numeric values are part of the state encoding.
const (
	// ConflictOpen: undecided; the storms are still gathering evidence.
	ConflictOpen ConflictOutcome = 0
	// ConflictLost: the node could not answer for the identity.
	ConflictLost ConflictOutcome = 1
	// ConflictClone: the node answered as well as another holder; two
	// machines present one identity.
	ConflictClone ConflictOutcome = 2
)

// Evidence thresholds of identity contests (docs/REPUTATION.md, "Duplicate
// identities"). They are fixed, not parameters: changing them changes how
// contests already under way are decided.
const (
	// IncumbentMinAccepted is the accepted verdicts an anchored node needs
	// when a contest begins to keep its standing while it lasts.
	IncumbentMinAccepted = 15
	// ContestMinAnswers is the accepted challenges of the contested device
	// (more than its failures) that make a holder an answerer.
	ContestMinAnswers = 3
	// ContestMinFailures is the failed or missed challenges of the contested
	// device (more than its answers) that make a holder a non-answerer.
	ContestMinFailures = 2
)

// Conflict is a device identity this node shares with other nodes.
type Conflict struct {
	Identity string
	// Nodes are all the nodes presenting Identity, sorted, this one included.
	Nodes []ethcrypto.Address
	Since uint64
	// Device is the UUID of this node's device presenting Identity ("": the
	// outcomes of every device count).
	Device string
	// Incumbent: when the contest began the node was anchored with at least
	// IncumbentMinAccepted accepted verdicts.
	Incumbent bool
	// Answered and Failed count the node's accepted and failed or missed
	// challenges of Device since the contest began.
	Answered, Failed uint64
	// Outcome is the decision taken on that evidence.
	Outcome ConflictOutcome
}

// contestedDevice reports whether an outcome on device counts for c.
func (c *Conflict) contestedDevice(device string) bool {
	return c.Outcome == ConflictOpen && (c.Device == "" || c.Device == device)
}

// MaxDevices is the most devices one node registers: the model refuses a
// registration with more, so an oracle must not admit one.
const MaxDevices = 64

// Limits on state sizes, enforced by Validate and the decoder.
const (
	maxConflicts     = 64
	maxConflictNodes = 256
	maxEvidenceRefs  = 16
)

// NodeState is the model's per-node state. Treat it as a value: Apply
// returns a new state and never modifies its argument's slices.
type NodeState struct {
	// Updated is the time (unix ms) the evidence is decayed to.
	Updated uint64
	// Registered is the time of the first registration (0: never).
	Registered uint64
	// Devices are the registered devices, sorted by UUID.
	Devices []Device
	// Anchored is set by the first accepted verdict after (re)registration:
	// from then on the registered fingerprints are the node's identity.
	Anchored bool
	// Evidence per dimension, decayed to Updated.
	Evidence [NumDimensions]Evidence
	// Conflicts are the active duplicate identities, sorted by Identity.
	Conflicts []Conflict
	// Penalties is the most recent penalty log, oldest first.
	Penalties []Penalty
	// Lifetime counters (never decayed).
	Accepted, Rejected, Missed, Resets uint64
	// Timing is the node's latest TimingWindow commitment latencies of
	// accepted challenges, each in basis points of its expectation,
	// oldest first: its timing profile.
	Timing []uint32
}

// clone returns a deep copy.
func (st NodeState) clone() NodeState {
	out := st
	out.Devices = slices.Clone(st.Devices)
	out.Conflicts = make([]Conflict, len(st.Conflicts))
	for i, c := range st.Conflicts {
		c.Nodes = slices.Clone(c.Nodes)
		out.Conflicts[i] = c
	}
	out.Penalties = make([]Penalty, len(st.Penalties))
	for i, p := range st.Penalties {
		p.Evidence = slices.Clone(p.Evidence)
		out.Penalties[i] = p
	}
	if len(st.Conflicts) == 0 {
		out.Conflicts = nil
	}
	if len(st.Penalties) == 0 {
		out.Penalties = nil
	}
	out.Timing = slices.Clone(st.Timing)
	if len(st.Timing) == 0 {
		out.Timing = nil
	}
	return out
}

// decayTo returns the evidence decayed from st.Updated to at.
func (m *Model) decayTo(st *NodeState, at uint64) [NumDimensions]Evidence {
	ev := st.Evidence
	if at <= st.Updated {
		return ev
	}
	dt := at - st.Updated
	for d := range ev {
		ev[d].Pos = decay(ev[d].Pos, dt, m.p.HalfLifeMs)
		ev[d].Neg = decay(ev[d].Neg, dt, m.p.HalfLifeMs)
	}
	return ev
}

func (m *Model) addPenalty(st *NodeState, p Penalty) {
	st.Penalties = append(st.Penalties, p)
	if over := len(st.Penalties) - int(m.p.MaxPenalties); over > 0 {
		st.Penalties = slices.Delete(st.Penalties, 0, over)
	}
}

func findDevice(devs []Device, uuid string) (int, bool) {
	return slices.BinarySearchFunc(devs, uuid, func(d Device, u string) int { return strings.Compare(d.UUID, u) })
}

func evidenceRefs(ev *Event) []string {
	var refs []string
	if ev.Challenge != "" {
		refs = append(refs, RefChallenge+ev.Challenge)
	}
	if ev.Verdict != "" {
		refs = append(refs, RefVerdict+ev.Verdict)
	}
	if ev.Device != "" {
		refs = append(refs, RefDevice+ev.Device)
	}
	return refs
}

// resetTrust clears all positive evidence and the anchor: the node starts
// over without trust. Negative evidence, conflicts and the penalty log are
// kept, so a changed UUID cannot launder a failing record; they fade by
// decay like any other evidence.
func resetTrust(st *NodeState) {
	for d := range st.Evidence {
		st.Evidence[d].Pos = 0
	}
	st.Anchored = false
	st.Resets++
}

// Apply returns the state after ev. It is pure: the result depends only on
// the model's parameters, st and ev. An invalid event returns st unchanged
// and an error wrapping ErrInvalidEvent.
func (m *Model) Apply(st NodeState, ev Event) (NodeState, error) {
	if err := ev.Validate(); err != nil {
		return st, err
	}
	out := st.clone()
	if ev.At > out.Updated {
		out.Evidence = m.decayTo(&out, ev.At)
		out.Updated = ev.At
	}
	lim := evidenceLimit
	add := func(d Dimension, pos, neg uint64) {
		out.Evidence[d].Pos = satAdd(out.Evidence[d].Pos, pos, lim)
		out.Evidence[d].Neg = satAdd(out.Evidence[d].Neg, neg, lim)
	}
	switch ev.Kind {
	case EventRegistered:
		devs := slices.Clone(ev.Devices)
		slices.SortFunc(devs, func(a, b Device) int { return strings.Compare(a.UUID, b.UUID) })
		if out.Registered == 0 {
			out.Registered = ev.At
			if out.Registered == 0 {
				out.Registered = 1
			}
		} else if out.Anchored {
			m.compareAnchors(&out, devs, ev)
		}
		out.Devices = devs
	case EventDeviceChanged:
		i, ok := findDevice(out.Devices, ev.Device)
		if !ok {
			m.addPenalty(&out, Penalty{At: ev.At, Dimension: Identity, Reason: ReasonIdentityUnknownDevice, Evidence: evidenceRefs(&ev)})
			break
		}
		devs := slices.Clone(out.Devices)
		devs[i] = ev.Devices[0]
		slices.SortFunc(devs, func(a, b Device) int { return strings.Compare(a.UUID, b.UUID) })
		if out.Anchored {
			m.compareAnchors(&out, devs, ev)
		}
		out.Devices = slices.CompactFunc(devs, func(a, b Device) bool { return a.UUID == b.UUID })
	case EventVerdictAccepted:
		out.Accepted++
		for i := range out.Conflicts {
			if out.Conflicts[i].contestedDevice(ev.Device) {
				out.Conflicts[i].Answered++
			}
		}
		if ev.Device != "" {
			if _, ok := findDevice(out.Devices, ev.Device); !ok {
				m.addPenalty(&out, Penalty{At: ev.At, Dimension: Identity, Reason: ReasonIdentityUnknownDevice, Evidence: evidenceRefs(&ev)})
				break
			}
		}
		if len(out.Devices) > 0 {
			if out.Anchored {
				add(Identity, Unit, 0)
			}
			out.Anchored = true
		}
		add(Liveness, Unit, 0)
		add(Correctness, Unit, 0)
		out.Timing = appendTiming(out.Timing, timingRatio(ev.ElapsedMs, ev.ExpectedMs))
		typical := medianBP(out.Timing)
		pos, neg := m.capacityCredit(typical)
		add(Capacity, pos, neg)
		if neg > 0 {
			m.addPenalty(&out, Penalty{At: ev.At, Dimension: Capacity, Reason: ReasonCapacitySlow, Weight: neg,
				Evidence: append(evidenceRefs(&ev), fmt.Sprintf("%s%dms/%dms", RefTiming, ev.ElapsedMs, ev.ExpectedMs),
					fmt.Sprintf("%s%dbp", RefTypicalTiming, typical))})
		}
	case EventVerdictRejected:
		out.Rejected++
		for i := range out.Conflicts {
			if out.Conflicts[i].contestedDevice(ev.Device) {
				out.Conflicts[i].Failed++
			}
		}
		if ev.Reason == ReasonCommitmentLate || ev.Reason == ReasonWalkLate {
			if absorbed, ok := absorbLate(out.Timing, &ev, m.p.ToleranceBP); ok {
				// A device that is typically on time, late by less
				// than a lost packet's retransmission: a timing
				// sample, not a capacity failure.
				out.Timing = absorbed
				break
			}
			// The deadline is sized from the claimed class: missing it is
			// a capacity failure, not evidence of a wrong result.
			add(Capacity, 0, Unit)
			m.addPenalty(&out, Penalty{At: ev.At, Dimension: Capacity, Reason: ev.Reason, Weight: Unit, Evidence: evidenceRefs(&ev)})
			break
		}
		add(Correctness, 0, m.p.InvalidWeight)
		m.addPenalty(&out, Penalty{At: ev.At, Dimension: Correctness, Reason: ev.Reason, Weight: m.p.InvalidWeight, Evidence: evidenceRefs(&ev)})
	case EventChallengeMissed:
		out.Missed++
		for i := range out.Conflicts {
			if out.Conflicts[i].contestedDevice(ev.Device) {
				out.Conflicts[i].Failed++
			}
		}
		add(Liveness, 0, m.p.MissWeight)
		m.addPenalty(&out, Penalty{At: ev.At, Dimension: Liveness, Reason: ReasonLivenessMissed, Weight: m.p.MissWeight, Evidence: evidenceRefs(&ev)})
		// No commitment by the deadline sized from the claimed class is
		// also what hardware slower than claimed looks like (a node may
		// give up instead of committing late), so it counts against
		// capacity like a late commitment: a liar is rejected after
		// three failures whether it commits late or not at all.
		add(Capacity, 0, Unit)
		m.addPenalty(&out, Penalty{At: ev.At, Dimension: Capacity, Reason: ReasonLivenessMissed, Weight: Unit, Evidence: evidenceRefs(&ev)})
	case EventDuplicateIdentity:
		nodes := slices.Clone(ev.Nodes)
		slices.SortFunc(nodes, func(a, b ethcrypto.Address) int { return bytes.Compare(a[:], b[:]) })
		nodes = slices.Compact(nodes)
		i, found := slices.BinarySearchFunc(out.Conflicts, ev.Identity, func(c Conflict, id string) int { return strings.Compare(c.Identity, id) })
		if found {
			// Another holder joined: the tallies and any outcome stand.
			out.Conflicts[i].Nodes = nodes
			break
		}
		if len(out.Conflicts) >= maxConflicts {
			// Keep the first maxConflicts for evidence.
			break
		}
		incumbent := out.Anchored && out.Accepted >= IncumbentMinAccepted
		out.Conflicts = slices.Insert(out.Conflicts, i, Conflict{Identity: ev.Identity, Nodes: nodes, Since: ev.At, Device: ev.Device, Incumbent: incumbent})
		m.addPenalty(&out, Penalty{At: ev.At, Dimension: Identity, Reason: ReasonIdentityContested, Evidence: conflictRefs(ev.Identity, nodes)})
	case EventDuplicateDecided:
		i, found := slices.BinarySearchFunc(out.Conflicts, ev.Identity, func(c Conflict, id string) int { return strings.Compare(c.Identity, id) })
		if !found || out.Conflicts[i].Outcome != ConflictOpen {
			break
		}
		c := &out.Conflicts[i]
		c.Outcome = ConflictLost
		if ev.Reason == ReasonIdentityDuplicate {
			c.Outcome = ConflictClone
		}
		refs := conflictRefs(c.Identity, c.Nodes)
		if len(refs) < maxEvidenceRefs {
			refs = append(refs, fmt.Sprintf("contest:%d/%d", c.Answered, c.Failed))
		}
		m.addPenalty(&out, Penalty{At: ev.At, Dimension: Identity, Reason: ev.Reason, Evidence: refs})
	case EventDuplicateResolved:
		i, found := slices.BinarySearchFunc(out.Conflicts, ev.Identity, func(c Conflict, id string) int { return strings.Compare(c.Identity, id) })
		if found {
			out.Conflicts = slices.Delete(out.Conflicts, i, i+1)
			if len(out.Conflicts) == 0 {
				out.Conflicts = nil
			}
		}
	}
	return out, nil
}

func conflictRefs(identity string, nodes []ethcrypto.Address) []string {
	refs := []string{RefIdentity + identity}
	for _, n := range nodes {
		if len(refs) == maxEvidenceRefs {
			break
		}
		refs = append(refs, RefNode+n.String())
	}
	return refs
}

// Decision is what DecideConflict concludes for one holder.
type Decision uint8

// Decisions.
const (
	// Undecided: not enough evidence yet (or the holder has no open
	// contest for the identity).
	Undecided Decision = iota
	// Wins: the holder answered while every other holder lost; its contest
	// ends (EventDuplicateResolved).
	Wins
	// Loses: the holder could not answer (EventDuplicateDecided with
	// IDENTITY_DUPLICATE_LOST).
	Loses
	// Clone: the holder answered as well as another holder
	// (EventDuplicateDecided with IDENTITY_DUPLICATE).
	Clone
)

func (d Decision) String() string {
	return [...]string{"undecided", "wins", "loses", "clone"}[d]
}

// DecideConflict decides the contest for identity among its holders'
// states, on the evidence the storms gathered (every holder's device is
// challenged at the same instants):
//
//   - a holder answers when it has at least ContestMinAnswers accepted
//     challenges of the device, more than its failures; it fails when it
//     has at least ContestMinFailures failed or missed ones, more than its
//     answers;
//   - two or more answerers are a clone pair: each answerer is a Clone and
//     every failing holder Loses;
//   - with one answerer, failing holders Lose; once every other holder has
//     lost (now or before) the answerer Wins;
//   - with no answerer, failing newcomers Lose, but a failing incumbent is
//     undecided: nobody answering is no evidence that its identity is not
//     its own (its liveness already pays for the misses). An incumbent
//     whose every rival has lost Wins;
//   - with no answerer, a failing newcomer that is the only holder to have
//     answered the device at all (at least one accepted challenge, every
//     rival none) is undecided, not lost: an accepted proof at a storm's
//     deadline is evidence of the device, and a copier without the GPU
//     has none. Like an incumbent, it Wins once every rival has lost. A
//     copier that registered first therefore cannot evict the holder
//     that answers for the device by making the contest long.
//
// Holders without an open contest for identity are Undecided, and a holder
// that lost before counts as lost.
func DecideConflict(identity string, states []NodeState) []Decision {
	out := make([]Decision, len(states))
	type holder struct {
		c                           *Conflict
		answers, fails, lostAlready bool
	}
	hs := make([]holder, len(states))
	answerers, everAnswered := 0, 0
	for i := range states {
		j, found := slices.BinarySearchFunc(states[i].Conflicts, identity, func(c Conflict, id string) int { return strings.Compare(c.Identity, id) })
		if !found {
			continue
		}
		c := &states[i].Conflicts[j]
		h := holder{c: c}
		switch {
		case c.Outcome == ConflictLost:
			h.lostAlready = true
		case c.Outcome != ConflictOpen:
		case c.Answered >= ContestMinAnswers && c.Answered > c.Failed:
			h.answers = true
			answerers++
		case c.Failed >= ContestMinFailures && c.Failed > c.Answered:
			h.fails = true
		}
		if c.Outcome == ConflictOpen && c.Answered > 0 {
			everAnswered++
		}
		hs[i] = h
	}
	// onlyEvidence: with no answerer, the holder is the only one that has
	// answered the device at all.
	onlyEvidence := func(h holder) bool {
		return answerers == 0 && everAnswered == 1 && h.c.Answered > 0
	}
	for i, h := range hs {
		if h.c == nil || h.c.Outcome != ConflictOpen {
			continue
		}
		switch {
		case answerers >= 2 && h.answers:
			out[i] = Clone
		case h.fails && (answerers > 0 || !h.c.Incumbent) && !onlyEvidence(h):
			out[i] = Loses
		}
	}
	// A holder wins when every other holder has lost.
	for i, h := range hs {
		if h.c == nil || h.c.Outcome != ConflictOpen || out[i] != Undecided || !(h.answers || h.c.Incumbent || onlyEvidence(h)) {
			continue
		}
		rivals, lost := 0, 0
		for j, o := range hs {
			if j == i || o.c == nil {
				continue
			}
			rivals++
			if o.lostAlready || out[j] == Loses {
				lost++
			}
		}
		if rivals > 0 && lost == rivals {
			out[i] = Wins
		}
	}
	return out
}

// compareAnchors compares the anchored devices with the new list: any
// anchored UUID missing from it resets trust; an unchanged UUID with a new
// fingerprint adds negative identity evidence.
func (m *Model) compareAnchors(st *NodeState, devs []Device, ev Event) {
	var gone []string
	var changed []string
	for _, old := range st.Devices {
		j, ok := findDevice(devs, old.UUID)
		if !ok {
			gone = append(gone, old.UUID)
			continue
		}
		if devs[j].Fingerprint != old.Fingerprint {
			changed = append(changed, old.UUID)
		}
	}
	if len(gone) > 0 {
		refs := evidenceRefs(&ev)
		for _, u := range gone {
			if len(refs) < maxEvidenceRefs && !slices.Contains(refs, RefDevice+u) {
				refs = append(refs, RefDevice+u)
			}
		}
		resetTrust(st)
		m.addPenalty(st, Penalty{At: ev.At, Dimension: Identity, Reason: ReasonIdentityUUIDChanged, Evidence: refs})
		return
	}
	if len(changed) > 0 {
		var refs []string
		for _, u := range changed {
			if len(refs) < maxEvidenceRefs {
				refs = append(refs, RefDevice+u)
			}
		}
		st.Evidence[Identity].Neg = satAdd(st.Evidence[Identity].Neg, m.p.FingerprintWeight, evidenceLimit)
		m.addPenalty(st, Penalty{At: ev.At, Dimension: Identity, Reason: ReasonIdentityFingerprintChanged, Weight: m.p.FingerprintWeight, Evidence: refs})
	}
}

// enough reports whether decayed negative evidence neg reaches a count of
// min events. Evidence starts decaying the moment it is recorded, so three
// failures a few seconds apart weigh 2.998 events, not 3: a threshold of
// whole events is reached once the evidence is within 1% of it (about 2.4
// hours of decay at the default half-life), so "rejected after 3 failures"
// holds for failures that happen close together.
func enough(neg, min uint64) bool {
	return neg*100 >= min*99
}

// capacityCredit splits one event of capacity evidence by the node's
// typical timing (the median latency ratio of its timing window, in basis
// points of the expectation): full credit up to 1 + ToleranceBP, linearly
// less up to 1 + ToleranceBP + SlackBP, none beyond. Judging the median
// rather than the answer at hand means one slow answer (a lost packet, a
// loaded oracle) costs nothing, while a device that is typically slower
// than its class loses credit on every answer.
func (m *Model) capacityCredit(typicalBP uint64) (pos, neg uint64) {
	full := uint64(MaxBP) + uint64(m.p.ToleranceBP)
	if typicalBP <= full {
		return Unit, 0
	}
	slack := uint64(m.p.SlackBP)
	over := typicalBP - full
	if slack == 0 || over >= slack {
		return 0, Unit
	}
	neg = over * Unit / slack
	if neg == 0 {
		neg = 1
	}
	return Unit - neg, neg
}

// TimingWindow is how many recent latency ratios a node's state keeps for
// its typical timing.
const TimingWindow = 9

// maxTimingBP caps one latency ratio (100x the expectation).
const maxTimingBP = 100 * MaxBP

// timingRatio is elapsed/expected in basis points, capped at maxTimingBP.
func timingRatio(elapsed, expected uint64) uint32 {
	if expected == 0 {
		expected = 1
	}
	if elapsed >= expected*100 {
		return maxTimingBP
	}
	return uint32(elapsed * MaxBP / expected)
}

// LateAbsorbMillis is how far past its deadline an answer may arrive and
// still be absorbed (absorbLate): about the extra delay of one lost packet
// on a wide-area link. It is far below what hardware slower than claimed
// overruns by on a four-second phase, and below what a device answering
// for a second identity in the same storm overruns by (a whole phase).
const LateAbsorbMillis = 1000

// absorbLate decides whether a late answer counts against capacity. It is
// absorbed, and returned as a timing sample appended to the window, when
// the answer arrived at most LateAbsorbMillis after its deadline and the
// node is typically on time: it has earlier timing samples and their
// median is within the tolerance. Honest devices meet their deadlines
// with a quarter of headroom, so what makes one of them late is the
// network (a lost packet) or a loaded oracle, once; hardware slower than
// claimed is late on every answer and never has on-time samples to be
// judged by.
func absorbLate(w []uint32, ev *Event, toleranceBP uint32) ([]uint32, bool) {
	if len(w) == 0 || ev.ExpectedMs == 0 || ev.DeadlineMs == 0 || ev.ElapsedMs > ev.DeadlineMs+LateAbsorbMillis {
		return nil, false
	}
	if medianBP(w) > uint64(MaxBP)+uint64(toleranceBP) {
		return nil, false
	}
	return appendTiming(w, timingRatio(ev.ElapsedMs, ev.ExpectedMs)), true
}

// appendTiming adds a ratio to the window, dropping the oldest beyond
// TimingWindow.
func appendTiming(w []uint32, r uint32) []uint32 {
	w = append(w, r)
	if len(w) > TimingWindow {
		w = slices.Clone(w[len(w)-TimingWindow:])
	}
	return w
}

// medianBP is the median of a timing window (the upper median of an even
// count); 0 for an empty window.
func medianBP(w []uint32) uint64 {
	if len(w) == 0 {
		return 0
	}
	s := slices.Clone(w)
	slices.Sort(s)
	return uint64(s[len(s)/2])
}

// DimensionView is a dimension as of a view time.
type DimensionView struct {
	Evidence
	// Rate is P/(P+N) in basis points (0 without evidence).
	Rate uint32
	// Confidence is W/(W+K) in basis points, W = P+N.
	Confidence uint32
	// Score is P/(P+N+K) in basis points: the rate shrunk by confidence.
	Score uint32
}

// Finding explains a status: a reason code with its evidence.
type Finding struct {
	Dimension Dimension
	Reason    Reason
	Evidence  []string
}

// View is a node's reputation as of a time.
type View struct {
	At         uint64
	Status     Status
	Score      uint32
	Dimensions [NumDimensions]DimensionView
	// Findings explain Status: for rejected and suspect nodes, the failing
	// dimensions with their most recent penalties; for probation, what is
	// missing.
	Findings []Finding
}

// View evaluates st at time at (unix ms) without changing it: evidence is
// decayed to at (never forward from a time before st.Updated), then scores
// and status follow the rules in docs/REPUTATION.md.
func (m *Model) View(st NodeState, at uint64) View {
	v := View{At: at}
	if st.Registered == 0 && st.Updated == 0 && len(st.Penalties) == 0 {
		v.Status = StatusUnknown
		return v
	}
	if at < st.Updated {
		v.At = st.Updated
	}
	ev := m.decayTo(&st, at)
	var wsum, total uint64
	for d := range NumDimensions {
		e := ev[d]
		w := e.Pos + e.Neg
		dv := DimensionView{
			Evidence:   e,
			Rate:       ratioBP(e.Pos, w),
			Confidence: ratioBP(w, w+m.p.ConfidenceK),
			Score:      ratioBP(e.Pos, w+m.p.ConfidenceK),
		}
		if d == Identity && contested(&st) {
			dv.Score = 0
		}
		v.Dimensions[d] = dv
		wsum += uint64(m.p.Weights[d])
		total += uint64(m.p.Weights[d]) * uint64(dv.Score)
	}
	v.Score = uint32(total / wsum)

	// Rules, most severe first.
	var failing, weak []Dimension
	for d := range NumDimensions {
		e := v.Dimensions[d]
		rejectBelow := m.p.RejectRateBP
		if d == Correctness {
			rejectBelow = m.p.RejectCorrectnessBP
		}
		if enough(e.Neg, m.p.RejectMinNeg) && e.Rate < rejectBelow {
			failing = append(failing, d)
		} else if enough(e.Neg, m.p.SuspectMinNeg) && e.Rate < m.p.SuspectRateBP {
			weak = append(weak, d)
		}
	}
	var decided, open []Conflict
	for _, c := range st.Conflicts {
		switch {
		case c.Outcome != ConflictOpen:
			decided = append(decided, c)
		case !c.Incumbent:
			open = append(open, c)
		}
	}
	switch {
	case len(decided) > 0 || len(failing) > 0:
		v.Status = StatusRejected
		for _, c := range decided {
			r := ReasonIdentityDuplicate
			if c.Outcome == ConflictLost {
				r = ReasonIdentityDuplicateLost
			}
			v.Findings = append(v.Findings, Finding{Dimension: Identity, Reason: r, Evidence: conflictRefs(c.Identity, c.Nodes)})
		}
		for _, d := range failing {
			v.Findings = append(v.Findings, m.dimensionFinding(&st, d, ReasonDimensionFailing))
		}
		v.Score = 0
	case len(weak) > 0:
		v.Status = StatusSuspect
		for _, d := range weak {
			v.Findings = append(v.Findings, m.dimensionFinding(&st, d, ReasonDimensionWeak))
		}
	case len(open) > 0:
		// A newcomer to a contested identity cannot become trusted until
		// the contest is decided for it.
		v.Status = StatusProbation
		for _, c := range open {
			v.Findings = append(v.Findings, Finding{Dimension: Identity, Reason: ReasonIdentityContested, Evidence: conflictRefs(c.Identity, c.Nodes)})
		}
	default:
		var thin []Dimension
		for d := range NumDimensions {
			if v.Dimensions[d].Confidence < m.p.TrustedConfidenceBP {
				thin = append(thin, d)
			}
		}
		switch {
		case len(thin) > 0:
			v.Status = StatusProbation
			for _, d := range thin {
				v.Findings = append(v.Findings, Finding{Dimension: d, Reason: ReasonEvidenceTooThin,
					Evidence: []string{fmt.Sprintf("confidence:%d/%d", v.Dimensions[d].Confidence, m.p.TrustedConfidenceBP)}})
			}
		case v.Score < m.p.TrustedScoreBP:
			v.Status = StatusProbation
			v.Findings = append(v.Findings, Finding{Reason: ReasonScoreBelowTrust,
				Evidence: []string{fmt.Sprintf("score:%d/%d", v.Score, m.p.TrustedScoreBP)}})
		default:
			v.Status = StatusTrusted
		}
	}
	return v
}

// contested reports whether the node's identity score is void: it lost or
// shares a contested identity as a newcomer, or is one of a clone pair. An
// incumbent's open contest leaves its identity score alone.
func contested(st *NodeState) bool {
	for _, c := range st.Conflicts {
		if c.Outcome != ConflictOpen || !c.Incumbent {
			return true
		}
	}
	return false
}

// maxFindingRefs bounds the references of one finding.
const maxFindingRefs = 24

// dimensionFinding lists the most recent penalties of dimension d, newest
// first, each as "penalty:<REASON>" followed by its references, as many
// whole penalties as fit in maxFindingRefs references.
func (m *Model) dimensionFinding(st *NodeState, d Dimension, status Reason) Finding {
	f := Finding{Dimension: d, Reason: status}
	for i := len(st.Penalties) - 1; i >= 0; i-- {
		p := st.Penalties[i]
		if p.Dimension != d {
			continue
		}
		if len(f.Evidence)+1+len(p.Evidence) > maxFindingRefs {
			break
		}
		f.Evidence = append(f.Evidence, "penalty:"+string(p.Reason))
		f.Evidence = append(f.Evidence, p.Evidence...)
	}
	return f
}
