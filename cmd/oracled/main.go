// Command oracled runs a TrueGPU oracle cluster member, or with `oracled
// dev` a whole development cluster (three members and a simulated fleet)
// in one process.
//
// Usage:
//
//	oracled [flags]        run one member
//	oracled dev [flags]    run a development cluster on loopback
//
// Every member flag can also be set in the environment as TRUEGPU_<FLAG>
// with dashes as underscores, e.g. TRUEGPU_NODE_ID; flags win.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	gnarklog "github.com/consensys/gnark/logger"
	"google.golang.org/grpc"

	"github.com/truegpu/truegpu/internal/cli"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/devcluster"
	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/oracle/serve"
	"github.com/truegpu/truegpu/oracle/transport"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	oracle.TuneGC()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "dev" {
		err = runDev(ctx, os.Args[2:], os.Stdout)
	} else {
		err = runMember(ctx, os.Args[1:])
	}
	if err != nil {
		cli.Exit("oracled", err)
	}
}

// envDefaults sets unset flags from TRUEGPU_* environment variables.
func envDefaults(fs *flag.FlagSet) error {
	var errs []error
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "TRUEGPU_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

func runDev(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("oracled dev", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `oracled dev runs a whole TrueGPU cluster in one process: three members on
loopback with data in a temporary directory, and a simulated fleet of honest
and adversarial GPU nodes answering challenges. UNSAFE dev keys; Ctrl-C stops
it and removes its data.

Usage: oracled dev [flags]

Flags:
`)
		fs.PrintDefaults()
	}
	httpAddr := fs.String("http", "127.0.0.1:8080", "REST and dashboard address of the first member")
	grpcAddr := fs.String("grpc", "127.0.0.1:9090", "gRPC address of the first member")
	members := fs.Int("members", 3, "cluster members")
	honest := fs.Int("honest", 8, "honest simulated nodes")
	adversaries := fs.String("adversaries", strings.Join(devcluster.DefaultFleet().Adversaries, ","), "adversarial simulated nodes (sim device profiles, comma-separated; empty for none)")
	epoch := fs.Duration("epoch", 15*time.Second, "epoch length")
	interval := fs.Duration("challenge-interval", 10*time.Second, "mean time between challenges of a device")
	timedTarget := fs.Uint64("timed-target", gpuclass.DefaultTimedTargetMillis, "device time in ms the timed phase is sized for on each claimed class (0: no timed phase); simulated devices model it and compute a small stand-in")
	memoryTarget := fs.Uint64("memory-target", gpuclass.DefaultWalkTargetMillis, "device time in ms the memory phase's walk is sized for on each claimed class (0: no memory phase); simulated devices model it and compute a small stand-in")
	timeScale := fs.Float64("time-scale", 0, "multiplier on simulated devices' modelled run time; default 1 with a timed or memory phase, "+strconv.Itoa(devcluster.DefaultTimeScale)+" without one (makes the GPU/CPU gap visible on the small profiles)")
	profile := fs.String("profile", "test", "workload profile (test, demo)")
	shadow := fs.Bool("shadow", false, "shadow mode: verdicts are computed and shown, but epoch reports publish every node as probation with score 10000 (docs/OPERATIONS.md)")
	verbose := fs.Bool("v", false, "verbose logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := refuseNegative(fs, "members", "honest", "epoch", "challenge-interval", "time-scale"); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if !*verbose {
		gnarklog.Disable()
	}
	if *timeScale == 0 {
		*timeScale = 1
		if *timedTarget == 0 && *memoryTarget == 0 {
			*timeScale = devcluster.DefaultTimeScale
		}
	}
	fleet := devcluster.FleetOptions{Honest: *honest, TimeScale: *timeScale}
	if *adversaries != "" {
		fleet.Adversaries = strings.Split(*adversaries, ",")
	}
	fmt.Fprintf(out, "oracled dev: starting %d members (profile %s); UNSAFE dev keys: deterministic Groth16 setup and member keys from fixed seeds\n", *members, *profile)
	if *shadow {
		fmt.Fprintln(out, "oracled dev: shadow mode: epoch reports publish every node as probation with score 10000; verdicts are shown, not enforced")
	}
	start := time.Now()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Members: *members, HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, Profile: *profile,
		EpochInterval: *epoch, ChallengeInterval: *interval, Fleet: fleet, Logger: log, TimedTargetMillis: *timedTarget, MemoryTargetMillis: *memoryTarget,
		Shadow: *shadow,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "oracled dev: shutting down")
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "oracled dev: shutdown:", err)
		}
	}()
	l := c.Leader()
	fmt.Fprintf(out, "oracled dev: cluster up in %v; leader %s\n", time.Since(start).Round(time.Millisecond), l.ID)
	for _, n := range c.Nodes {
		fmt.Fprintf(out, "  %s  raft %s  gRPC %s  REST %s\n", n.ID, n.RaftAddr, n.GRPCAddr, n.HTTPURL())
	}
	fmt.Fprintf(out, "oracled dev: dashboard %s/   REST %s/v1/nodes   %s/v1/cluster   gRPC %s\n", c.Nodes[0].HTTPURL(), c.Nodes[0].HTTPURL(), c.Nodes[0].HTTPURL(), c.Nodes[0].GRPCAddr)
	if c.Fleet != nil {
		fmt.Fprintf(out, "oracled dev: simulated fleet of %d nodes (%d honest, adversaries: %s)\n", len(c.Fleet.Nodes), *honest, *adversaries)
	}
	devReady(c)
	progress(ctx, c, out)
	return nil
}

// refuseNegative reports the named numeric flags (counts, rates,
// durations) that were given a negative value, instead of letting a
// negative value fall back to a default further down.
func refuseNegative(fs *flag.FlagSet, names ...string) error {
	var bad []string
	for _, name := range names {
		if v := fs.Lookup(name).Value.String(); strings.HasPrefix(v, "-") {
			bad = append(bad, fmt.Sprintf("-%s %s", name, v))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("cannot be negative: %s", strings.Join(bad, ", "))
	}
	return nil
}

// devReady is called once the dev cluster serves (tests hook it).
var devReady = func(*devcluster.Cluster) {}

// progress prints milestones to out until ctx ends.
func progress(ctx context.Context, c *devcluster.Cluster, out io.Writer) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var registered, verdict, report bool
	var lastEpoch uint64
	leader := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l := c.Leader()
		if l == nil {
			continue
		}
		if l.ID != leader {
			if leader != "" {
				fmt.Fprintf(out, "oracled dev: leader is now %s\n", l.ID)
			}
			leader = l.ID
		}
		f := l.Member.FSM()
		meta, err := f.Meta()
		if err != nil {
			continue
		}
		if c.Fleet != nil && !registered && int(meta.NodeCount) >= len(c.Fleet.Nodes) {
			registered = true
			fmt.Fprintf(out, "oracled dev: fleet registered (%d nodes)\n", meta.NodeCount)
		}
		if !verdict && meta.TotalVerdicts > 0 {
			verdict = true
			fmt.Fprintf(out, "oracled dev: first verdicts applied\n")
		}
		if es, err := f.LatestEpoch(true); err == nil && es.Report.Epoch != lastEpoch {
			lastEpoch = es.Report.Epoch
			if !report {
				report = true
				fmt.Fprintf(out, "oracled dev: first report signed: epoch %d, %d of %d signatures, root 0x%x\n", es.Report.Epoch, len(es.Report.Signatures), len(es.Report.Signers), es.Report.Root)
			} else {
				fmt.Fprintln(out, epochLine(es.Report.Epoch, meta, c.Fleet)+shadowNote(es.Report))
			}
		}
	}
}

// epochLine is the progress line of a signed epoch report; fleet is nil
// when the dev cluster runs without a simulated fleet.
func epochLine(epoch uint64, meta *truegpuv1.MetaState, fleet *devcluster.Fleet) string {
	line := fmt.Sprintf("oracled dev: epoch %d signed; %d nodes, %d verdicts", epoch, meta.NodeCount, meta.TotalVerdicts)
	if fleet == nil {
		return line
	}
	st := &fleet.Stats
	return fmt.Sprintf("%s (fleet: %d accepted, %d rejected)", line, st.Accepted.Load(), st.Rejected.Load())
}

// shadowNote is what a progress line adds for a report closed in shadow
// mode: what enforcement would have published. Empty when enforcing.
func shadowNote(r *truegpuv1.EpochReport) string {
	if !r.GetShadow() {
		return ""
	}
	var parts []string
	for _, st := range []reputation.Status{reputation.StatusTrusted, reputation.StatusProbation, reputation.StatusSuspect, reputation.StatusRejected} {
		if n := r.EnforcedByStatus[st.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no nodes")
	}
	return fmt.Sprintf("; shadow mode: every node published as %s, enforcement would have published %s", fsm.ShadowStatus, strings.Join(parts, ", "))
}

func runMember(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("oracled", flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `oracled runs one member of a TrueGPU oracle cluster: Raft on Pebble, the
verification pipeline, gRPC and REST (with the dashboard at /).

Usage:
  oracled [flags]        run a member (-bootstrap for the first, -join for the rest)
  oracled dev [flags]    run a 3-member cluster and a simulated fleet on loopback
                         ('oracled dev -h' for its flags)

Every flag can also be set as TRUEGPU_<FLAG> (dashes as underscores); flags win.

Member flags:
`)
		printVisibleDefaults(fs)
	}
	id := fs.String("node-id", "", "Raft server id of this member (required)")
	dataDir := fs.String("data-dir", "", "data directory (required)")
	raftAddr := fs.String("raft-addr", "127.0.0.1:7000", "Raft listen address")
	raftAdv := fs.String("raft-advertise", "", "Raft address other members dial (default raft-addr)")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:9090", "gRPC listen address")
	grpcAdv := fs.String("grpc-advertise", "", "gRPC address published to members (default grpc-addr)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "REST/dashboard listen address")
	tlsCert := fs.String("tls-cert", "", "member certificate (PEM) for Raft and gRPC; its common name must be -node-id")
	tlsKey := fs.String("tls-key", "", "member key (PEM)")
	tlsCA := fs.String("tls-ca", "", "CA bundle (PEM) that signs member certificates")
	insecureNoTLS := fs.Bool("insecure-no-tls", false, "run without mutual TLS (UNSAFE: loopback addresses only, for tests on one machine)")
	operators := fs.String("operators", "", "comma-separated member ids (certificate common names) allowed to add and remove any member")
	signerKey := fs.String("signer-key", "", "report signing key file (hex, mode 0600; required)")
	bootstrap := fs.Bool("bootstrap", false, "bootstrap a new single-member cluster if the data dir is empty")
	join := fs.String("join", "", "gRPC address of a member to join through")
	profile := fs.String("profile", "standard", "workload profile")
	runTimedTarget := fs.Uint64("timed-target", gpuclass.DefaultTimedTargetMillis, "device time in ms the timed phase of each challenge is sized for on the claimed class (docs/PROTOCOL.md); 0 issues challenges without one")
	runMemoryTarget := fs.Uint64("memory-target", gpuclass.DefaultWalkTargetMillis, "device time in ms the memory phase's walk of each challenge is sized for on the claimed class; its table fills most of the claimed class's memory (docs/PROTOCOL.md); 0 issues challenges without one")
	timedStandIn := fs.Bool("timed-stand-in", false, "development only (needs -unsafe-dev-keys): nodes compute a small stand-in of the timed and memory phases while deadlines stay sized for the real ones, for clusters of simulated devices; a real device answers a stand-in in milliseconds, so timing says nothing about its hardware")
	devKeys := fs.Bool("unsafe-dev-keys", false, "use the deterministic UNSAFE Groth16 dev setup (and accept a -verifying-key from it)")
	vkFile := fs.String("verifying-key", "", "verifying key file of the profile (from the ceremony)")
	clusterID := fs.String("cluster-id", "", "id of the cluster that nodes' signed requests name (the same on every member; required with TLS, default \""+oracle.DefaultClusterID+"\" without)")
	chainID := fs.Uint64("chain-id", 0, "EIP-712 chain id of the feed contract that accepts this cluster's reports (with -feed-contract; the same on every member)")
	feedContract := fs.String("feed-contract", "", "address (0x…) of the feed contract that accepts this cluster's reports (with -chain-id)")
	feedNoChain := fs.Bool("feed-no-chain", false, "sign reports for no chain (chain id 0, contract 0x0) although TLS is on; the default without TLS")
	newNodeRate := fs.Float64("new-nodes-per-second", oracle.DefaultNewNodesPerSecond, "cluster-wide rate at which new nodes may register (registered nodes are not counted)")
	newNodeBurst := fs.Int("new-node-burst", oracle.DefaultNewNodeBurst, "new registrations admitted at once before -new-nodes-per-second applies")
	epoch := fs.Duration("epoch", time.Hour, "epoch length")
	interval := fs.Duration("challenge-interval", 0, "mean time between challenges of a device (default 5m; shorter for tests)")
	retain := fs.Uint64("retain-epochs", 168, "closed epochs that keep their challenges' details (every member must use the same value)")
	shadow := fs.Bool("shadow", false, "shadow mode: verdicts are computed and shown, but epoch reports publish every node as probation with score 10000; the same on every member: the leader switches the cluster to its setting, and members sign only reports of theirs (docs/OPERATIONS.md)")
	corsOrigins := fs.String("cors-origins", "", "comma-separated origins allowed by CORS (default none)")
	faults := devFaultFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if err := refuseNegative(fs, "epoch", "challenge-interval", "new-nodes-per-second", "new-node-burst"); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"node-id": *id, "data-dir": *dataDir, "signer-key": *signerKey} {
		if v == "" {
			missing = append(missing, "-"+name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required flags: %s", strings.Join(missing, ", "))
	}
	creds, err := loadMemberTLS(*tlsCert, *tlsKey, *tlsCA, *id, *insecureNoTLS, map[string]string{
		"raft-addr": *raftAddr, "raft-advertise": *raftAdv, "grpc-addr": *grpcAddr, "grpc-advertise": *grpcAdv,
		"http-addr": *httpAddr, "join": *join,
	})
	if err != nil {
		return err
	}
	var serverTLS, clientTLS *tls.Config
	if creds != nil {
		serverTLS, clientTLS = creds.ServerConfig(), creds.ClientConfig()
	} else {
		warnInsecure(os.Stderr)
	}
	cluster, err := clusterIDFor(*clusterID, creds != nil)
	if err != nil {
		return err
	}
	domain, notice, err := feedDomain(*chainID, *feedContract, *feedNoChain, creds != nil)
	if err != nil {
		return err
	}
	if notice != "" {
		fmt.Fprintln(os.Stderr, notice)
	}
	key, err := ethcrypto.LoadKeyFile(*signerKey)
	if err != nil {
		return err
	}
	p, err := prover.ProfileByID(*profile)
	if err != nil {
		return err
	}
	var vk *verifier.VerifyingKey
	switch {
	case *vkFile != "":
		if vk, err = loadVerifyingKey(*vkFile, *devKeys, os.Stderr); err != nil {
			return err
		}
	case *devKeys:
		fmt.Fprintln(os.Stderr, "oracled: WARNING: using the UNSAFE deterministic dev setup; anyone can forge proofs")
		if _, vk, err = prover.UnsafeDevKeys(p, ""); err != nil {
			return err
		}
	default:
		return errors.New("set -verifying-key (or -unsafe-dev-keys for development)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *grpcAdv == "" {
		*grpcAdv = *grpcAddr
	}
	lis, err := serve.Listen(*grpcAddr, *httpAddr)
	if err != nil {
		return err
	}
	// The listeners are the server's from serve.Start on; until then they
	// are closed here on every error.
	started := false
	defer func() {
		if !started {
			lis.Close()
		}
	}()
	cfg := oracle.Config{ID: *id, DataDir: *dataDir, RaftAddr: *raftAddr, RaftAdvertise: *raftAdv,
		GRPCAdvertise: *grpcAdv, SignerKey: key, Bootstrap: *bootstrap,
		Profile: p, VerifyingKey: vk, EpochInterval: *epoch, Logger: log}
	cfg.FSM.RetainEpochs = *retain
	cfg.Shadow = *shadow
	cfg.Schedule.Interval = *interval
	cfg.Schedule.TimedTargetMillis = *runTimedTarget
	cfg.Schedule.MemoryTargetMillis = *runMemoryTarget
	if *timedStandIn {
		if !*devKeys {
			return errors.New("-timed-stand-in is for development clusters of simulated devices and needs -unsafe-dev-keys: with it a real device's timing proves nothing")
		}
		cfg.Schedule.TimedStandIn = true
		fmt.Fprintln(os.Stderr, "oracled: WARNING: -timed-stand-in: nodes compute a stand-in of the timed and memory phases; timing says nothing about real hardware")
	}
	cfg.FSM.Domain = domain
	cfg.ClusterID = cluster
	cfg.Admission = &oracle.RegistrationBudget{PerSecond: *newNodeRate, Burst: *newNodeBurst}
	if serverTLS != nil {
		var adv net.Addr
		if *raftAdv != "" {
			if adv, err = net.ResolveTCPAddr("tcp", *raftAdv); err != nil {
				return fmt.Errorf("-raft-advertise: %w", err)
			}
		}
		sl, err := transport.Listen(*raftAddr, adv, serverTLS, clientTLS, transport.WithLogger(log.With("member", *id)), transport.WithVerifyPeer(verifyRaftPeer))
		if err != nil {
			return err
		}
		cfg.StreamLayer = sl
	}
	if creds != nil {
		cfg.PeerDial = []grpc.DialOption{serve.DialOption(creds)}
		cfg.MemberAuth = true
	}
	if *operators != "" {
		cfg.Operators = strings.Split(*operators, ",")
	}
	if err := faults.apply(ctx, &cfg, *devKeys, os.Stderr); err != nil {
		return err
	}
	sopts := serve.Options{TLS: creds, GatewayTarget: *grpcAdv}
	if *corsOrigins != "" {
		sopts.AllowedOrigins = strings.Split(*corsOrigins, ",")
	}
	started = true
	srv, err := serve.Start(ctx, cfg, lis, sopts)
	if err != nil {
		return err
	}
	defer srv.Close()
	m := srv.Member()
	dial := srv.Dial()
	if *join != "" {
		if err := joinCluster(ctx, *join, dial, m); err != nil {
			return err
		}
	}
	fmt.Printf("oracled: member %s serving gRPC on %s, REST on http://%s, Raft on %s\n", *id, srv.GRPCAddr(), srv.HTTPAddr(), m.RaftAddress())
	fmt.Printf("oracled: reports for chain %d, feed contract %s; feed params digest 0x%x (profile %s, reputation parameters)\n",
		domain.ChainID, domain.VerifyingContract, oracle.FeedParamsDigest(p, nil), p.ID())
	if creds == nil {
		fmt.Println("oracled: INSECURE: no TLS (-insecure-no-tls); loopback only")
	}
	if *shadow {
		fmt.Println("oracled: shadow mode (-shadow): epoch reports publish every node as probation with score 10000; verdicts are shown in the API, not enforced")
	}
	<-ctx.Done()
	fmt.Println("oracled: shutting down")
	return nil
}

// joinCluster asks the cluster to add this member as a voter through addr,
// or through the leader when addr is a follower: with TLS followers do not
// forward membership calls, so the leader sees this member's certificate.
func joinCluster(ctx context.Context, addr string, dial grpc.DialOption, m *oracle.Member) error {
	for {
		err := joinAt(ctx, addr, dial, m)
		if err == nil {
			return nil
		}
		if leader := leaderAt(ctx, addr, dial); leader != "" && leader != addr {
			if err = joinAt(ctx, leader, dial, m); err == nil {
				return nil
			}
		}
		fmt.Fprintf(os.Stderr, "oracled: join through %s: %v; retrying\n", addr, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func joinAt(ctx context.Context, addr string, dial grpc.DialOption, m *oracle.Member) error {
	cc, err := grpc.NewClient(addr, dial)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = truegpuv1.NewAdminServiceClient(cc).JoinMember(cctx, &truegpuv1.JoinMemberRequest{Id: m.ID(), RaftAddress: m.RaftAddress()})
	return err
}

// leaderAt returns the leader's gRPC address as the member at addr sees it.
func leaderAt(ctx context.Context, addr string, dial grpc.DialOption) string {
	cc, err := grpc.NewClient(addr, dial)
	if err != nil {
		return ""
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := truegpuv1.NewAdminServiceClient(cc).GetCluster(cctx, &truegpuv1.GetClusterRequest{})
	if err != nil {
		return ""
	}
	for _, mem := range resp.GetMembers() {
		if mem.GetLeader() {
			return mem.GetGrpcAddress()
		}
	}
	return ""
}
