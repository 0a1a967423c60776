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
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/oracle/raftstore"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

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
	// leadership receives Raft's leadership changes (raft.Config.NotifyCh).
	leadership chan bool

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
	// The state's and the Raft log's Pebble stores log through the
	// member's logger.
	if cfg.FSM.Logger == nil {
		cfg.FSM.Logger = m.log
	}
	if m.fsm, err = fsm.Open(filepath.Join(cfg.DataDir, "state"), cfg.FSM); err != nil {
		return nil, err
	}
	if m.store, err = raftstore.Open(filepath.Join(cfg.DataDir, "raft"), &raftstore.Options{Logger: m.log}); err != nil {
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
		m.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: cfg.StreamLayer, MaxPool: cfg.Timing.TransportPool, Timeout: cfg.Timing.TransportTimeout, Logger: hlog})
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
		if m.trans, err = raft.NewTCPTransportWithLogger(cfg.RaftAddr, adv, cfg.Timing.TransportPool, cfg.Timing.TransportTimeout, hlog); err != nil {
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
	// Leader-only work starts and stops on the changes Raft reports here.
	m.leadership = make(chan bool, leadershipBuffer)
	rc.NotifyCh = m.leadership
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
	m.pipeline = newPipeline(m, m.fsm, proposeFunc(m.Propose))
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

// Logger returns the member's logger: Config.Logger with the member's id
// as the "member" attribute. Everything of the member logs through it.
func (m *Member) Logger() *slog.Logger { return m.log }

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
	timeout := m.cfg.Timing.ReadBarrierTimeout
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
