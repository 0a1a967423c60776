package oracle

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
	"google.golang.org/grpc"
)

// Config configures a member. Zero fields take the documented defaults;
// Validate reports every problem at once, those of the Schedule and
// Pipeline sub-configurations included. Start applies the defaults, then
// validates.
type Config struct {
	// ID is the Raft server id; required.
	ID string
	// DataDir holds the Raft log, snapshots and the state; required.
	DataDir string
	// RaftAddr is the address the Raft transport listens on; required unless
	// Transport is set.
	RaftAddr string
	// RaftAdvertise is the Raft address other members dial. Default RaftAddr.
	RaftAdvertise string
	// StreamLayer, when set, carries Raft traffic (e.g. mutual TLS);
	// otherwise plain TCP on RaftAddr.
	StreamLayer raft.StreamLayer
	// Transport, when set, replaces the network transport (tests).
	Transport raft.Transport
	// GRPCAdvertise and HTTPAdvertise are this member's API addresses as
	// published in the member table.
	GRPCAdvertise, HTTPAdvertise string
	// SignerKey signs epoch reports; required.
	SignerKey *ethcrypto.PrivateKey
	// Bootstrap starts a new cluster of Peers (this member included) when
	// the data directory holds no Raft state. Default false: the member
	// restarts from its data directory or waits to be added by a cluster.
	Bootstrap bool
	// Peers is the initial voter set for Bootstrap. Default: this member.
	Peers []raft.Server
	// Profile is the workload profile of challenges. Default "test".
	Profile *prover.Profile
	// VerifyingKey verifies proofs of Profile; required.
	VerifyingKey *verifier.VerifyingKey
	// FSM configures the state machine (model, report domain); its zero
	// fields take fsm.Config's defaults.
	FSM fsm.Config
	// Schedule configures challenge scheduling; its zero fields take the
	// defaults ScheduleConfig names.
	Schedule ScheduleConfig
	// Pipeline configures verification; its zero fields take the defaults
	// PipelineConfig names.
	Pipeline PipelineConfig
	// EpochInterval is the epoch length. Default 1 minute.
	EpochInterval time.Duration
	// Timing holds the member's internal timeouts and retry intervals;
	// its zero fields take the defaults TimingConfig names.
	Timing TimingConfig
	// Raft tunes timeouts; nil means raft.DefaultConfig with snapshots
	// every 8192 entries. The member uses a copy, in which it sets LocalID,
	// Logger, NoSnapshotRestoreOnStart and NotifyCh (its leader-only work
	// follows the leadership changes reported there).
	Raft *raft.Config
	// Now is the clock of leader-side stamping. Default time.Now.
	Now func() time.Time
	// Logger is the member's logger. Default slog.Default(). The member
	// adds its id as the "member" attribute and everything of the member
	// logs through it: its loops, Raft (unless RaftLog is set), the Pebble
	// stores of the state (unless FSM.Logger is set) and of the Raft log,
	// and the servers of package serve.
	Logger *slog.Logger
	// RaftLog, when set, receives Raft's own warnings and errors as text.
	// Default: Raft logs through Logger (see RaftLogger), with the
	// member's attributes, at the levels Logger's handler enables.
	RaftLog io.Writer
	// MemberAuth makes member-only calls (JoinMember, RemoveMember,
	// SubmitReportSignature) answer only callers whose verified client
	// certificate names the member the call is about, or an operator (see
	// identity.go). Set it whenever the gRPC server runs mutual TLS;
	// without it any caller that reaches the server is admitted (loopback
	// development clusters).
	MemberAuth bool
	// Operators are the member ids (certificate common names) of
	// operators, who may add and remove any member. Default none.
	Operators []string
	// Admission decides whether new nodes may register (stake, work,
	// allow lists, budgets). Default: a RegistrationBudget of
	// DefaultNewNodesPerSecond up to DefaultNewNodeBurst.
	Admission Admission
	// ClusterID names the cluster in signed node requests (their cluster
	// field), so a request signed for one cluster is refused by another.
	// Every member of a cluster uses the same value. Default
	// DefaultClusterID.
	ClusterID string
	// Shadow is the epoch reports' mode this member stands for: shadow
	// mode (true) publishes every node with the neutral leaf
	// (fsm.ShadowStatus, fsm.ShadowScoreBP) while verdicts are computed and
	// shown as when enforcing. The mode itself is replicated state
	// (fsm: SetShadowModeCommand): while this member leads it switches the
	// cluster to its value before the next epoch close, and it signs only
	// reports closed in its value. Set it the same on every member.
	// Default false: enforcing.
	Shadow bool
	// PeerDial are the dial options for calls to other members' gRPC
	// servers (forwarding, report signatures, member table updates): TLS
	// with this member's certificate in production. Default: plaintext,
	// for loopback development clusters.
	PeerDial []grpc.DialOption
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required"))
	}
	if c.RaftAddr == "" && c.Transport == nil && c.StreamLayer == nil {
		errs = append(errs, errors.New("RaftAddr, StreamLayer or Transport is required"))
	}
	if c.SignerKey == nil {
		errs = append(errs, errors.New("SignerKey is required"))
	}
	if c.VerifyingKey == nil {
		errs = append(errs, errors.New("VerifyingKey is required"))
	}
	if c.Profile != nil && c.VerifyingKey != nil && c.VerifyingKey.Digest != c.Profile.Digest() {
		errs = append(errs, fmt.Errorf("VerifyingKey is for %s, not %s", prover.DescribeDigest(c.VerifyingKey.Digest), c.Profile.ID()))
	}
	if c.EpochInterval < 0 {
		errs = append(errs, fmt.Errorf("EpochInterval must not be negative, got %v", c.EpochInterval))
	}
	if b, ok := c.Admission.(*RegistrationBudget); ok && b != nil && (b.PerSecond < 0 || b.Burst < 0) {
		errs = append(errs, fmt.Errorf("Admission: a registration budget must not be negative, got %v per second and a burst of %d", b.PerSecond, b.Burst))
	}
	if err := c.Schedule.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Pipeline.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Timing.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

func (c *Config) ensureDefaults() error {
	if c.Profile == nil {
		p, err := prover.ProfileByName("test")
		if err != nil {
			return err
		}
		c.Profile = p
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftAddr
	}
	if c.EpochInterval == 0 {
		c.EpochInterval = time.Minute
	}
	if c.ClusterID == "" {
		c.ClusterID = DefaultClusterID
	}
	if c.Admission == nil {
		c.Admission = &RegistrationBudget{PerSecond: DefaultNewNodesPerSecond, Burst: DefaultNewNodeBurst}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.FSM.ParamsDigest == ([32]byte{}) {
		c.FSM.ParamsDigest = FeedParamsDigest(c.Profile, c.FSM.Model)
	}
	c.Schedule.ensureDefaults()
	c.Pipeline.ensureDefaults()
	c.Timing.ensureDefaults()
	return nil
}

// TimingConfig holds a member's internal timeouts and retry intervals. A
// zero field takes the default its comment names; Validate refuses
// negative values.
type TimingConfig struct {
	// RaftTimeout bounds how long a Raft operation waits to be taken up:
	// a proposal's log entry, adding or removing a voter, the barrier a
	// new leader applies before it schedules. Default 10 s.
	RaftTimeout time.Duration
	// TransportPool is the connections the Raft network transport keeps
	// open to each peer. Default 4.
	TransportPool int
	// TransportTimeout bounds one Raft transport exchange. Default 10 s.
	TransportTimeout time.Duration
	// ReadBarrierTimeout bounds the barrier of a linearizable read whose
	// context has no deadline. Default 5 s.
	ReadBarrierTimeout time.Duration
	// RequestTimeout bounds a member's own requests: proposing or
	// forwarding its row of the member table, and its epoch report
	// signatures. Default 5 s.
	RequestTimeout time.Duration
	// SelfRegisterInterval is how often a member checks its row in the
	// member table and proposes it again when it is missing or stale.
	// Default 500 ms.
	SelfRegisterInterval time.Duration
	// AuditInterval is how often a member looks for closed epochs it has
	// not audited and signed, besides doing so when one closes. It is also
	// the wait before a failed leader barrier is retried. Default 1 s.
	AuditInterval time.Duration
}

func (c *TimingConfig) ensureDefaults() {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.RaftTimeout, 10 * time.Second}, {&c.TransportTimeout, 10 * time.Second}, {&c.ReadBarrierTimeout, 5 * time.Second},
		{&c.RequestTimeout, 5 * time.Second}, {&c.SelfRegisterInterval, 500 * time.Millisecond}, {&c.AuditInterval, time.Second}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.TransportPool == 0 {
		c.TransportPool = 4
	}
}

// Validate refuses negative values.
func (c *TimingConfig) Validate() error {
	var errs []error
	for _, k := range []struct {
		name string
		v    time.Duration
	}{{"RaftTimeout", c.RaftTimeout}, {"TransportTimeout", c.TransportTimeout}, {"ReadBarrierTimeout", c.ReadBarrierTimeout},
		{"RequestTimeout", c.RequestTimeout}, {"SelfRegisterInterval", c.SelfRegisterInterval}, {"AuditInterval", c.AuditInterval}} {
		if k.v < 0 {
			errs = append(errs, fmt.Errorf("Timing.%s must not be negative, got %v", k.name, k.v))
		}
	}
	if c.TransportPool < 0 {
		errs = append(errs, fmt.Errorf("Timing.TransportPool must not be negative, got %d", c.TransportPool))
	}
	return errors.Join(errs...)
}

// FeedParamsDigest is the paramsDigest of a member's epoch reports
// (fsm.Config.ParamsDigest by default): it binds the profile whose proofs
// the scores rest on and the reputation parameters of model (nil: the
// defaults). A feed contract is deployed with this value (with the member
// signers and the threshold), so it refuses reports made under other
// profiles or scoring rules.
func FeedParamsDigest(p *prover.Profile, model *reputation.Model) [32]byte {
	params := reputation.DefaultParams()
	if model != nil {
		params = model.Params()
	}
	return reputation.FeedParamsDigest([][32]byte{p.Digest()}, params)
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
	// MaxDevices bounds the devices of one registration. Default and
	// largest value reputation.MaxDevices (64), the most the reputation
	// model records for one node.
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
		c.MaxDevices = reputation.MaxDevices
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
	if d.MaxDevices > reputation.MaxDevices {
		errs = append(errs, fmt.Errorf("Pipeline.MaxDevices %d exceeds %d, the most devices the reputation model records for one node", d.MaxDevices, reputation.MaxDevices))
	}
	if d.QueueDepth > 0 && d.MaxBatch > d.QueueDepth {
		errs = append(errs, fmt.Errorf("Pipeline.MaxBatch %d exceeds QueueDepth %d: a batch is taken from the proofs waiting in the queue", d.MaxBatch, d.QueueDepth))
	}
	return errors.Join(errs...)
}

// ScheduleConfig configures challenge scheduling on the leader. A zero
// field takes the default its comment names; Validate refuses negative
// and out-of-range values.
type ScheduleConfig struct {
	// Tick is how often the leader looks for due work. Default 1s.
	Tick time.Duration
	// Interval is the mean time between two challenges of one device; each
	// gap is drawn uniformly from [Interval/2, 3·Interval/2). Default 5m
	// (oracled -challenge-interval).
	Interval time.Duration
	// ProofWindow is the time from the commitment deadline to the proof
	// deadline. Default 10m.
	ProofWindow time.Duration
	// StormInterval is how often suspected groups are stormed (every device
	// of the group challenged at one instant). Default 3·Interval; negative
	// disables storms.
	StormInterval time.Duration
	// MaxPerTick bounds the challenges issued per tick. Default 2000.
	MaxPerTick int
	// RandomStormSize is how many devices, drawn uniformly from the whole
	// fleet, are challenged together at each storm instant besides the
	// suspected groups: nodes with nothing in common yet. A machine that
	// answers for several identities must then run the workloads of all of
	// its identities that were drawn at once. Capped at MaxPerTick. Default
	// 256; negative disables random storms.
	RandomStormSize int
	// TimedTargetMillis sizes the timed phase of every challenge: the
	// device time it is expected to take on the claimed class (package
	// gpuclass, docs/PROTOCOL.md "The timed phase"), at most 600000 (10
	// minutes). Default 0: challenges without a timed phase
	// (oracled -timed-target sets gpuclass.DefaultTimedTargetMillis).
	TimedTargetMillis uint64
	// TimedStandIn makes nodes compute TimedStandIn-sized stand-in
	// GEMMs while deadlines stay sized from the TimedTargetMillis workload
	// of the claimed class. It is for development clusters of simulated
	// devices, which model the production workload's time from the class
	// table but cannot compute it: a real device answers a stand-in in
	// milliseconds, so such a cluster measures nothing about real hardware.
	//
	// It applies to the memory phase too: nodes compute a
	// StandInMemory-sized table and walk. Default false.
	TimedStandIn bool
	// MemoryTargetMillis sizes the memory phase of every challenge: its
	// table fills MemoryTablePercent of the claimed class's memory and its
	// walk is expected to take this long on the claimed class (package
	// gpuclass, docs/PROTOCOL.md "The memory phase"), at most 600000 (10
	// minutes). Default 0: challenges without a memory phase
	// (oracled -memory-target sets gpuclass.DefaultWalkTargetMillis).
	MemoryTargetMillis uint64
}

// maxPhaseTargetMillis bounds TimedTargetMillis and MemoryTargetMillis:
// ten minutes of device time per phase.
const maxPhaseTargetMillis = 10 * 60 * 1000

func (c *ScheduleConfig) ensureDefaults() {
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Minute
	}
	if c.ProofWindow == 0 {
		c.ProofWindow = 10 * time.Minute
	}
	if c.StormInterval == 0 {
		c.StormInterval = 3 * c.Interval
	}
	if c.MaxPerTick == 0 {
		c.MaxPerTick = 2000
	}
	if c.RandomStormSize == 0 {
		c.RandomStormSize = 256
	}
}

// Validate reports every knob that has no meaning, in field order. It
// judges the values a member runs with: the defaults first take the place
// of zero fields (on a copy; c is not changed), so zero always means the
// default and only StormInterval and RandomStormSize may be negative
// (disabled).
func (c *ScheduleConfig) Validate() error {
	d := *c
	d.ensureDefaults()
	var errs []error
	for _, k := range []struct {
		name string
		v    time.Duration
	}{{"Tick", d.Tick}, {"Interval", d.Interval}, {"ProofWindow", d.ProofWindow}} {
		if k.v < 0 {
			errs = append(errs, fmt.Errorf("Schedule.%s must not be negative, got %v", k.name, k.v))
		}
	}
	if d.MaxPerTick < 0 {
		errs = append(errs, fmt.Errorf("Schedule.MaxPerTick must not be negative, got %d", d.MaxPerTick))
	}
	if d.TimedTargetMillis > maxPhaseTargetMillis {
		errs = append(errs, fmt.Errorf("Schedule.TimedTargetMillis %d exceeds %d (10 minutes)", d.TimedTargetMillis, maxPhaseTargetMillis))
	}
	if d.MemoryTargetMillis > maxPhaseTargetMillis {
		errs = append(errs, fmt.Errorf("Schedule.MemoryTargetMillis %d exceeds %d (10 minutes)", d.MemoryTargetMillis, maxPhaseTargetMillis))
	}
	return errors.Join(errs...)
}
