// Package devcluster runs a whole oracle cluster in one process on
// loopback: several members with Raft, gRPC and HTTP (REST and dashboard),
// data in a temporary directory, and optionally a simulated fleet of honest
// and adversarial nodes driven through the public gRPC API. It backs
// `oracled dev` and end-to-end tests. Each member is served by package
// serve, as a production member is: gRPC in plaintext on loopback (Raft
// runs mutual TLS), REST and the dashboard over HTTP.
//
// Everything here is for development: the Groth16 keys come from the
// deterministic unsafe dev setup and member keys from fixed seeds.
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/oracle/serve"
	"github.com/truegpu/truegpu/oracle/transport"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// Options configure a dev cluster. Zero values take the defaults.
type Options struct {
	// Members is the cluster size. Default 3.
	Members int
	// Dir holds the members' data. Default: a new temporary directory,
	// removed by Close.
	Dir string
	// HTTPAddr and GRPCAddr are the first member's listen addresses; the
	// other members listen on free loopback ports. "127.0.0.1:0" picks a
	// free port. Defaults 127.0.0.1:8080 and 127.0.0.1:9090.
	HTTPAddr, GRPCAddr string
	// Profile is the workload profile. Default "test".
	Profile string
	// EpochInterval is the epoch length. Default 15s.
	EpochInterval time.Duration
	// ChallengeInterval is the mean time between challenges of a device.
	// Default 20s.
	ChallengeInterval time.Duration
	// ProofWindow is the time allowed for proofs after the commitment
	// deadline. Default 2 minutes.
	ProofWindow time.Duration
	// RandomStormSize is oracle.ScheduleConfig.RandomStormSize: nodes
	// drawn at random into each storm. Zero: the scheduler's default.
	RandomStormSize int
	// Fleet configures the simulated fleet; the zero value runs none.
	Fleet FleetOptions
	// TimedTargetMillis gives every challenge a timed phase sized for
	// this much device time on the claimed class
	// (oracle.ScheduleConfig.TimedTargetMillis), with nodes computing the
	// stand-in (oracle.StandInTimed): simulated devices model the
	// production phase's time from the class table. Zero runs none.
	TimedTargetMillis uint64
	// MemoryTargetMillis gives every challenge a memory phase whose walk
	// is sized for this much device time on the claimed class
	// (oracle.ScheduleConfig.MemoryTargetMillis), with nodes computing
	// the stand-in (oracle.StandInMemory). Zero runs none.
	MemoryTargetMillis uint64
	// Pipeline tunes the verification pipeline of every member.
	Pipeline oracle.PipelineConfig
	// Raft overrides Raft timeouts (tests use short ones).
	Raft *raft.Config
	// Reputation overrides the reputation model's parameters (tests
	// that need trusted nodes within seconds lower the confidence they
	// need). Default reputation.DefaultParams().
	Reputation *reputation.Params
	// Domain is the EIP-712 domain of the cluster's epoch reports (the
	// feed contract's chain id and address). Default: chain id 0 and the
	// zero contract, which no contract accepts.
	Domain reputation.Domain
	// Admission decides whether new nodes may register. Default: the
	// member's default registration budget (oracle.DefaultNewNodesPerSecond,
	// oracle.DefaultNewNodeBurst), one per member.
	Admission func() oracle.Admission
	// Shadow runs the cluster in shadow mode (oracle.Config.Shadow on every
	// member): epoch reports publish every node with the neutral leaf.
	Shadow bool
	// Logger is every member's logger; each member labels its lines with
	// its id (member=member-1), those of its Raft transport, Pebble stores
	// and servers included. Default slog.Default().
	Logger *slog.Logger
	// RaftLog, when set, receives Raft's warnings as text. Default: Raft
	// logs through Logger, each member's lines labelled with its id.
	RaftLog io.Writer
}

func (o *Options) ensureDefaults() {
	if o.Members <= 0 {
		o.Members = 3
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:8080"
	}
	if o.GRPCAddr == "" {
		o.GRPCAddr = "127.0.0.1:9090"
	}
	if o.Profile == "" {
		o.Profile = "test"
	}
	if o.EpochInterval <= 0 {
		o.EpochInterval = 15 * time.Second
	}
	if o.ChallengeInterval <= 0 {
		o.ChallengeInterval = 20 * time.Second
	}
	if o.ProofWindow <= 0 {
		o.ProofWindow = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Raft == nil {
		// Proving and the cluster share the host's cores: tolerate
		// scheduling hiccups rather than flap leadership.
		rc := raft.DefaultConfig()
		rc.HeartbeatTimeout = 2 * time.Second
		rc.ElectionTimeout = 2 * time.Second
		rc.LeaderLeaseTimeout = time.Second
		rc.SnapshotThreshold = 8192
		o.Raft = rc
	}
}

// Node is one running member with its servers.
type Node struct {
	Member   *oracle.Member
	ID       string
	RaftAddr string
	// GRPCAddr and HTTPAddr are the addresses actually listened on.
	GRPCAddr, HTTPAddr string

	srv     *serve.Server
	running bool
}

// HTTPURL returns the node's base URL.
func (n *Node) HTTPURL() string { return "http://" + n.HTTPAddr }

// Cluster is a running dev cluster.
type Cluster struct {
	opts    Options
	Nodes   []*Node
	Profile *prover.Profile
	// ProvingKey and VerifyingKey are the unsafe dev keys of Profile.
	ProvingKey   *prover.ProvingKey
	VerifyingKey *verifier.VerifyingKey
	Fleet        *Fleet

	dir     string
	tempDir bool
	ca      *devpki.CA
	peers   []raft.Server
	mu      sync.Mutex
}

// MemberKey returns the dev signing key of member i (unsafe: from a fixed
// seed).
func MemberKey(i int) *ethcrypto.PrivateKey {
	return ethcrypto.KeyFromSeed([]byte(fmt.Sprintf("truegpu dev member %d", i)))
}

// Start starts the cluster, waits for a leader, and starts the fleet.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts.ensureDefaults()
	p, err := prover.ProfileByName(opts.Profile)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, Profile: p, dir: opts.Dir}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "truegpu-dev-"); err != nil {
			return nil, err
		}
		c.tempDir = true
	}
	if c.ProvingKey, c.VerifyingKey, err = prover.UnsafeDevKeys(p, ""); err != nil {
		c.Close()
		return nil, fmt.Errorf("devcluster: dev setup: %w", err)
	}
	// Raft transports first: bootstrap needs every member's address. Members
	// talk mutual TLS with certificates from a throwaway dev CA.
	if c.ca, err = devpki.NewCA("truegpu dev cluster"); err != nil {
		c.Close()
		return nil, err
	}
	transports := make([]raft.Transport, opts.Members)
	for i := range opts.Members {
		id := fmt.Sprintf("member-%d", i+1)
		t, err := c.raftTransport(id, "127.0.0.1:0")
		if err != nil {
			for _, t := range transports[:i] {
				t.(io.Closer).Close()
			}
			c.Close()
			return nil, fmt.Errorf("devcluster: raft transport: %w", err)
		}
		transports[i] = t
		c.peers = append(c.peers, raft.Server{ID: raft.ServerID(id), Address: t.LocalAddr(), Suffrage: raft.Voter})
		c.Nodes = append(c.Nodes, &Node{ID: id, RaftAddr: string(t.LocalAddr())})
	}
	for i, n := range c.Nodes {
		g, h := "127.0.0.1:0", "127.0.0.1:0"
		if i == 0 {
			g, h = opts.GRPCAddr, opts.HTTPAddr
		}
		if err := c.startNode(i, transports[i], g, h); err != nil {
			for _, t := range transports[i+1:] {
				t.(io.Closer).Close()
			}
			c.Close()
			return nil, err
		}
		_ = n
	}
	if _, err := c.WaitLeader(ctx, 30*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	if opts.Fleet.total() > 0 {
		f, err := StartFleet(ctx, c, opts.Fleet)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Fleet = f
	}
	return c, nil
}

func (c *Cluster) startNode(i int, trans raft.Transport, grpcAddr, httpAddr string) error {
	n := c.Nodes[i]
	var fcfg fsm.Config
	if c.opts.Reputation != nil {
		model, err := reputation.NewModel(*c.opts.Reputation)
		if err != nil {
			closeTransport(trans)
			return fmt.Errorf("devcluster: reputation parameters: %w", err)
		}
		fcfg.Model = model
	}
	fcfg.Domain = c.opts.Domain
	var adm oracle.Admission
	if c.opts.Admission != nil {
		adm = c.opts.Admission()
	}
	l, err := serve.Listen(grpcAddr, httpAddr)
	if err != nil {
		closeTransport(trans)
		return fmt.Errorf("devcluster: %s %w", n.ID, err)
	}
	srv, err := serve.Start(context.Background(), oracle.Config{
		FSM: fcfg, Admission: adm,
		ID: n.ID, DataDir: filepath.Join(c.dir, n.ID), Transport: trans,
		SignerKey: MemberKey(i),
		Bootstrap: true, Peers: c.peers, Profile: c.Profile, VerifyingKey: c.VerifyingKey,
		Schedule: oracle.ScheduleConfig{Tick: 500 * time.Millisecond, Interval: c.opts.ChallengeInterval, ProofWindow: c.opts.ProofWindow,
			TimedTargetMillis: c.opts.TimedTargetMillis, MemoryTargetMillis: c.opts.MemoryTargetMillis,
			TimedStandIn:    c.opts.TimedTargetMillis > 0 || c.opts.MemoryTargetMillis > 0,
			RandomStormSize: c.opts.RandomStormSize},
		Pipeline: c.opts.Pipeline, EpochInterval: c.opts.EpochInterval, Raft: c.opts.Raft, Logger: c.opts.Logger, RaftLog: c.opts.RaftLog,
		Shadow: c.opts.Shadow,
	}, l, serve.Options{ShutdownGrace: shutdownGrace})
	if err != nil {
		closeTransport(trans) // a member that failed to start may not have closed it
		return fmt.Errorf("devcluster: start %s: %w", n.ID, err)
	}
	n.srv, n.Member = srv, srv.Member()
	n.GRPCAddr, n.HTTPAddr = srv.GRPCAddr(), srv.HTTPAddr()
	n.running = true
	return nil
}

// closeTransport closes a Raft transport that no member took. Closing the
// network transport again is harmless.
func closeTransport(t raft.Transport) {
	if c, ok := t.(io.Closer); ok {
		c.Close()
	}
}

// shutdownGrace is how long a stopping member lets HTTP requests and gRPC
// calls in flight finish.
const shutdownGrace = 2 * time.Second

func (n *Node) stop() error {
	if !n.running {
		return nil
	}
	n.running = false
	return n.srv.Close()
}

// StopMember stops member i as a crash would (it stays in the
// configuration).
func (c *Cluster) StopMember(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Nodes[i].stop()
}

// RestartMember restarts a stopped member from its data directory on its
// old addresses.
func (c *Cluster) RestartMember(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.Nodes[i]
	if n.running {
		return fmt.Errorf("devcluster: %s is running", n.ID)
	}
	var t raft.Transport
	var err error
	for range 50 { // the old port may take a moment to free
		if t, err = c.raftTransport(n.ID, n.RaftAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("devcluster: restart %s: %w", n.ID, err)
	}
	return c.startNode(i, t, n.GRPCAddr, n.HTTPAddr)
}

// raftTransport listens for Raft on addr with mutual TLS.
func (c *Cluster) raftTransport(id, addr string) (raft.Transport, error) {
	cert, err := c.ca.Issue(id, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	log := c.opts.Logger.With("member", id) // as the member labels its own lines
	layer, err := transport.Listen(addr, nil, devpki.ServerConfig(c.ca, cert), devpki.ClientConfig(c.ca, cert), transport.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if c.opts.RaftLog != nil {
		return raft.NewNetworkTransport(layer, 4, 5*time.Second, c.opts.RaftLog), nil
	}
	hlog := oracle.RaftLogger(log).Named("transport")
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 4, Timeout: 5 * time.Second, Logger: hlog}), nil
}

// Leader returns the running node that leads, or nil.
func (c *Cluster) Leader() *Node {
	for _, n := range c.Nodes {
		if n.running && n.Member.IsLeader() {
			return n
		}
	}
	return nil
}

// WaitLeader waits until some running member leads.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration) (*Node, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		l := c.Leader()
		c.mu.Unlock()
		if l != nil {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, errors.New("devcluster: no leader elected in time")
}

// Close stops the fleet and every member and removes a temporary data
// directory.
func (c *Cluster) Close() error {
	if c.Fleet != nil {
		c.Fleet.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, n := range c.Nodes {
		if n.Member != nil {
			errs = append(errs, n.stop())
		}
	}
	if c.tempDir {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}
