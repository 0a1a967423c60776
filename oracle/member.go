package oracle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/oracle/raftstore"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// Errors of a member. Compare with errors.Is. They map to gRPC codes in
// the server (see grpc.go).
var (
	// ErrNotLeader reports a leader-only operation on a follower. The
	// error text names the leader when one is known.
	ErrNotLeader = errors.New("oracle: not the leader")
	// ErrNoLeader reports that the cluster has no leader right now; retry
	// with backoff.
	ErrNoLeader = errors.New("oracle: no leader")
	// ErrOutcomeUnknown reports that leadership was lost while a command
	// was in flight: it may or may not have been applied. Retrying is
	// safe; submissions are idempotent by (node, nonce).
	ErrOutcomeUnknown = errors.New("oracle: outcome unknown, leadership lost")
	// ErrOverloaded reports a full queue; retry after a pause.
	ErrOverloaded = errors.New("oracle: overloaded")
	// ErrInvalidConfig reports an unusable member configuration.
	ErrInvalidConfig = errors.New("oracle: invalid configuration")
	// ErrClosed reports use of a closed member.
	ErrClosed = errors.New("oracle: member closed")
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
	// Raft tunes timeouts; nil means raft.DefaultConfig with snapshots
	// every 8192 entries.
	Raft *raft.Config
	// Now is the clock of leader-side stamping. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
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
	return nil
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

// Member is one oracle cluster member: Raft, the state machine, and the
// leader-only loops (scheduler, pipeline, epoch closer) plus the auditor
// that signs reports on every member.
type Member struct {
	cfg      Config
	log      *slog.Logger
	raft     *raft.Raft
	fsm      *fsm.FSM
	store    *raftstore.Store
	trans    raft.Transport
	proposer *proposer
	pipeline *pipeline
	signer   ethcrypto.Address
	peers    conns
	replay   replayCache
	// recovered remembers the node signatures this member recovered, so
	// that Apply does not recover again what the pipeline checked.
	recovered *ethcrypto.RecoverCache
	metrics   *memberMetrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
}

// Start opens the member's stores and starts Raft and its loops.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"raft", "state", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("oracle: data dir: %w", err)
		}
	}
	m := &Member{cfg: cfg, log: cfg.Logger.With("member", cfg.ID), signer: cfg.SignerKey.Address(), metrics: newMemberMetrics()}
	raftMetrics() // Raft reports to go-metrics from its first moments
	m.peers.opts = cfg.PeerDial
	var err error
	cleanup := func() {
		if m.raft != nil {
			m.raft.Shutdown().Error()
		}
		if m.trans != nil {
			if c, ok := m.trans.(io.Closer); ok {
				c.Close()
			}
		}
		if m.store != nil {
			m.store.Close()
		}
		if m.fsm != nil {
			m.fsm.Close()
		}
	}
	m.recovered = ethcrypto.NewRecoverCache(1 << 16)
	if cfg.FSM.Recover == nil {
		cfg.FSM.Recover = m.recovered.Recover
	}
	if m.fsm, err = fsm.Open(filepath.Join(cfg.DataDir, "state"), cfg.FSM); err != nil {
		return nil, err
	}
	if m.store, err = raftstore.Open(filepath.Join(cfg.DataDir, "raft"), nil); err != nil {
		cleanup()
		return nil, fmt.Errorf("oracle: raft log: %w", err)
	}
	hlog := RaftLogger(m.log)
	if cfg.RaftLog != nil {
		hlog = hclog.New(&hclog.LoggerOptions{Name: "raft-" + cfg.ID, Level: hclog.Warn, Output: cfg.RaftLog})
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "snapshots"), 2, hlog)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("oracle: snapshots: %w", err)
	}
	// Raft skips restoring snapshots on start (the state keeps its own
	// applied index). If the state is behind the newest snapshot (its
	// directory was lost or replaced), restore that snapshot first, or the
	// entries it covers would never be applied.
	if metas, err := snaps.List(); err == nil && len(metas) > 0 && metas[0].Index > m.fsm.AppliedIndex() {
		_, rc, err := snaps.Open(metas[0].ID)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("oracle: open snapshot %s: %w", metas[0].ID, err)
		}
		if err := m.fsm.Restore(rc); err != nil {
			cleanup()
			return nil, fmt.Errorf("oracle: state at %d is behind snapshot %s and restoring it failed: %w", m.fsm.AppliedIndex(), metas[0].ID, err)
		}
		m.log.Warn("state was behind the newest snapshot; restored it", "snapshot", metas[0].ID, "index", metas[0].Index)
	}
	switch {
	case cfg.Transport != nil:
		m.trans = cfg.Transport
	case cfg.StreamLayer != nil:
		m.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: cfg.StreamLayer, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog})
	default:
		var adv net.Addr
		if cfg.RaftAdvertise != cfg.RaftAddr {
			a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
			if err != nil {
				cleanup()
				return nil, fmt.Errorf("oracle: raft advertise address %q: %w", cfg.RaftAdvertise, err)
			}
			adv = a
		}
		if m.trans, err = raft.NewTCPTransportWithLogger(cfg.RaftAddr, adv, 4, 10*time.Second, hlog); err != nil {
			cleanup()
			return nil, fmt.Errorf("oracle: raft transport on %s: %w", cfg.RaftAddr, err)
		}
	}
	rc := raft.DefaultConfig()
	if cfg.Raft != nil {
		c := *cfg.Raft
		rc = &c
	} else {
		rc.SnapshotThreshold = 8192
		rc.TrailingLogs = 10240
	}
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	// The state survives restarts on its own (applied index in the same
	// batch); restoring an older snapshot over it would move it backwards.
	rc.NoSnapshotRestoreOnStart = true
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(m.store, m.store, snaps)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("oracle: %w", err)
		}
		if !has {
			peers := cfg.Peers
			if len(peers) == 0 {
				peers = []raft.Server{{ID: rc.LocalID, Address: m.trans.LocalAddr(), Suffrage: raft.Voter}}
			}
			if err := raft.BootstrapCluster(rc, m.store, m.store, snaps, m.trans, raft.Configuration{Servers: peers}); err != nil {
				cleanup()
				return nil, fmt.Errorf("oracle: bootstrap: %w", err)
			}
		}
	}
	logs, err := raft.NewLogCache(4096, m.store)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("oracle: log cache: %w", err)
	}
	if m.raft, err = raft.NewRaft(rc, m.fsm, logs, m.store, snaps, m.trans); err != nil {
		cleanup()
		return nil, fmt.Errorf("oracle: start raft: %w", err)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.proposer = newProposer(m)
	m.pipeline = newPipeline(m)
	m.goLoop(m.proposer.run)
	m.goLoop(m.pipeline.run)
	m.goLoop(m.leaderLoop)
	m.goLoop(m.auditLoop)
	m.goLoop(m.selfRegisterLoop)
	return m, nil
}

func (m *Member) goLoop(fn func(context.Context)) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn(m.ctx)
	}()
}

// Close stops the loops, Raft and the stores. It does not leave the
// cluster: a closed member is a crashed one to the others.
func (m *Member) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.cancel()
		m.wg.Wait()
		m.peers.close()
		err = m.raft.Shutdown().Error()
		if c, ok := m.trans.(io.Closer); ok {
			c.Close()
		}
		err = errors.Join(err, m.store.Close(), m.fsm.Close())
	})
	return err
}

// ID returns the member's Raft server id.
func (m *Member) ID() string { return m.cfg.ID }

// FSM returns the member's state machine (for reads).
func (m *Member) FSM() *fsm.FSM { return m.fsm }

// Raft returns the member's Raft instance.
func (m *Member) Raft() *raft.Raft { return m.raft }

// RaftAddress returns the address other members dial.
func (m *Member) RaftAddress() string { return string(m.trans.LocalAddr()) }

// Signer returns the address of the member's report-signing key.
func (m *Member) Signer() ethcrypto.Address { return m.signer }

// Profile returns the challenge profile.
func (m *Member) Profile() *prover.Profile { return m.cfg.Profile }

// IsLeader reports whether this member is the leader.
func (m *Member) IsLeader() bool { return m.raft.State() == raft.Leader }

// LeaderInfo returns the leader's id and gRPC address (from the member
// table); empty strings when unknown.
func (m *Member) LeaderInfo() (id, grpcAddr string) {
	_, lid := m.raft.LeaderWithID()
	id = string(lid)
	if id == "" {
		return "", ""
	}
	if id == m.cfg.ID {
		return id, m.cfg.GRPCAdvertise
	}
	members, _ := m.fsm.Members()
	for _, mem := range members {
		if mem.Id == id {
			return id, mem.GrpcAddress
		}
	}
	return id, ""
}

func (m *Member) notLeaderError() error {
	id, addr := m.LeaderInfo()
	if id == "" {
		return ErrNoLeader
	}
	return fmt.Errorf("%w; the leader is %s at %s", ErrNotLeader, id, addr)
}

// Barrier makes a linearizable read possible: it confirms leadership with
// a quorum and waits until every committed entry is applied locally.
func (m *Member) Barrier(ctx context.Context) error {
	if !m.IsLeader() {
		return m.notLeaderError()
	}
	if err := m.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := m.raft.Barrier(timeout).Error(); err != nil {
		return mapRaftError(err)
	}
	return nil
}

func mapRaftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrOverloaded, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// Propose replicates one command through the batching proposer and returns
// the index at which it was applied. Only the leader proposes.
func (m *Member) Propose(ctx context.Context, c *truegpuv1.Command) (uint64, error) {
	if c.Version == 0 {
		c.Version = fsm.CommandVersion
	}
	if c.LeaderTimeUnixMs == 0 {
		c.LeaderTimeUnixMs = m.cfg.Now().UnixMilli()
	}
	return m.proposer.propose(ctx, c)
}

// ErrNotMember reports a metadata refresh from a server that is not in the
// Raft configuration (e.g. one that was removed).
var ErrNotMember = errors.New("oracle: not a member of the cluster")

// Join adds a voter and records its metadata. Leader only.
func (m *Member) Join(ctx context.Context, meta *truegpuv1.SetMemberCommand) (uint64, error) {
	return m.join(ctx, meta, false)
}

func (m *Member) join(ctx context.Context, meta *truegpuv1.SetMemberCommand, refreshOnly bool) (uint64, error) {
	if !m.IsLeader() {
		return 0, m.notLeaderError()
	}
	cf := m.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0, mapRaftError(err)
	}
	present := false
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == meta.Id && string(s.Address) == meta.RaftAddress {
			present = true
		}
	}
	var idx uint64
	if !present && refreshOnly {
		return 0, fmt.Errorf("%w: %s at %s", ErrNotMember, meta.Id, meta.RaftAddress)
	}
	if !present && len(meta.Signature) == 0 && (len(meta.SignerAddress) != 0 || meta.GrpcAddress != "" || meta.HttpAddress != "") {
		return 0, fmt.Errorf("%w: member %s: addresses and signer come in the member's signed row; join with id and Raft address only, and the member publishes its row itself", ErrInvalidRequest, meta.Id)
	}
	if len(meta.Signature) != 0 {
		if err := m.checkRow(meta); err != nil {
			return 0, err
		}
	}
	if !present {
		f := m.raft.AddVoter(raft.ServerID(meta.Id), raft.ServerAddress(meta.RaftAddress), 0, 10*time.Second)
		if err := f.Error(); err != nil {
			return 0, mapRaftError(err)
		}
		idx = f.Index()
	}
	if len(meta.Signature) == 0 {
		return idx, nil
	}
	i, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_SetMember{SetMember: meta}})
	return max(idx, i), err
}

// Remove removes a member and its metadata. Leader only.
func (m *Member) Remove(ctx context.Context, id string) (uint64, error) {
	if !m.IsLeader() {
		return 0, m.notLeaderError()
	}
	f := m.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		return 0, mapRaftError(err)
	}
	i, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_RemoveMember{RemoveMember: &truegpuv1.RemoveMemberCommand{Id: id}}})
	if errors.Is(err, fsm.ErrNotFound) {
		err = nil
	}
	return max(f.Index(), i), err
}

// checkRow runs the state machine's checks of a signed member row against
// the local member table before anything is changed, so a row that would
// be refused adds no voter either.
func (m *Member) checkRow(row *truegpuv1.SetMemberCommand) error {
	if err := fsm.VerifyMemberRow(row); err != nil {
		return err
	}
	members, err := m.fsm.Members()
	if err != nil {
		return err
	}
	for _, mem := range members {
		same := len(mem.SignerAddress) == 20 && string(mem.SignerAddress) == string(row.SignerAddress)
		switch {
		case mem.Id == row.Id && len(mem.SignerAddress) == 20 && !same:
			return fmt.Errorf("%w: member %s signs with %s; a new signer needs the member removed and joined again", fsm.ErrConflict, row.Id, ethcrypto.Address(mem.SignerAddress))
		case mem.Id != row.Id && same:
			return fmt.Errorf("%w: signer %s belongs to member %s", fsm.ErrConflict, ethcrypto.Address(row.SignerAddress), mem.Id)
		}
	}
	return nil
}

// selfMeta is this member's row of the member table, unsigned.
func (m *Member) selfMeta() *truegpuv1.SetMemberCommand {
	return &truegpuv1.SetMemberCommand{
		Id: m.cfg.ID, GrpcAddress: m.cfg.GRPCAdvertise, HttpAddress: m.cfg.HTTPAdvertise,
		SignerAddress: m.signer[:], RaftAddress: m.RaftAddress(),
	}
}

// signedSelfMeta is this member's row signed with its signer key, with a
// seq above the stored row's.
func (m *Member) signedSelfMeta() (*truegpuv1.SetMemberCommand, error) {
	row := m.selfMeta()
	row.Seq = uint64(max(m.cfg.Now().UnixMilli(), 1))
	if members, err := m.fsm.Members(); err == nil {
		for _, mem := range members {
			if mem.Id == row.Id && mem.Seq >= row.Seq {
				row.Seq = mem.Seq + 1
			}
		}
	}
	if err := fsm.SignMemberRow(row, m.cfg.SignerKey); err != nil {
		return nil, err
	}
	return row, nil
}

// selfRegisterLoop keeps this member's metadata in the member table: the
// leader proposes its own row; a follower asks the leader through
// AdminService.JoinMember (idempotent for an existing voter).
func (m *Member) selfRegisterLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.selfRegistered() {
			continue
		}
		want, err := m.signedSelfMeta()
		if err != nil {
			m.log.Error("cannot sign this member's row", "err", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if m.IsLeader() {
			_, err = m.Propose(cctx, &truegpuv1.Command{Body: &truegpuv1.Command_SetMember{SetMember: want}})
		} else if _, addr := m.LeaderInfo(); addr != "" {
			err = m.forwardJoin(cctx, addr, want)
		}
		cancel()
		if err != nil {
			m.log.Debug("member table update pending", "err", err)
		}
	}
}

func (m *Member) selfRegistered() bool {
	members, err := m.fsm.Members()
	if err != nil {
		return false
	}
	want := m.selfMeta()
	for _, mem := range members {
		if mem.Id == want.Id {
			return mem.GrpcAddress == want.GrpcAddress && mem.HttpAddress == want.HttpAddress &&
				string(mem.SignerAddress) == string(want.SignerAddress) && mem.RaftAddress == want.RaftAddress
		}
	}
	return false
}
