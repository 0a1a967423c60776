package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// fleetFlags are the flags of "eval fleet".
type fleetFlags struct {
	nodes     int
	honest    int
	rounds    int
	interval  time.Duration
	lateAfter time.Duration
	stormSize int
	target    uint64
	memory    uint64
	epoch     time.Duration
	proofWin  time.Duration
	timeout   time.Duration
	progress  time.Duration
	seed      uint64
	shadow    bool
	json      bool
	profile   string
}

// fleetKind is one kind of node in the evaluated fleet: its share of the
// fleet in percent and the sim device profile of its i-th node.
type fleetKind struct {
	Name    string
	Percent int
	// What the kind does, for the report.
	Does string
	// late kinds start -late-after into the run.
	late bool
}

// fleetKinds are the kinds of the evaluated fleet. Honest takes what the
// adversarial shares leave.
var fleetKinds = []fleetKind{
	{Name: "honest", Does: "honest device of its class (every claimable class in turn)"},
	{Name: "cpu-spoofer", Percent: 20, Does: "no GPU: a reference CPU or a 128-core AMX server presenting a GPU's fingerprint"},
	{Name: "weaker-card", Percent: 23, Does: "a weaker card claiming a better class (every pair the class model says a challenge catches)"},
	{Name: "clone", Percent: 4, Does: "one GPU behind 5 identities presenting its one fingerprint"},
	{Name: "relay", Percent: 3, Does: "one GPU answering for 4 identities with fingerprints of their own"},
	{Name: "garbage", Percent: 10, Does: "random commitments and proofs"},
	{Name: "partial", Percent: 5, Does: "computes half the cells and proves what it can"},
	{Name: "grinder", Percent: 5, Does: "computes half the cells and grinds roots against its guess of the seed"},
	{Name: "replay", Percent: 4, Does: "answers once, then replays that root and proof"},
	{Name: "flaky", Percent: 2, Does: "honest, but unavailable for 30% of challenges"},
	{Name: "late-joiner", Percent: 5, Does: "CPU spoofers and weaker cards registering -late-after into the run", late: true},
	{Name: "silent", Percent: 3, Does: "honest for 2 challenges, then never answers again"},
	{Name: "identity-copier", Percent: 6, Does: "a weaker card presenting the fingerprint of an honest node of the class it claims"},
}

func init() {
	var ff fleetFlags
	register(&command{
		Name:  "eval fleet",
		Usage: "[flags]",
		Short: "run a large adversarial fleet through a development cluster and report detection",
		Long: `
Eval fleet runs a development cluster in this process (three Raft members on
loopback, unsafe dev keys, the test workload profile with a timed phase
sized for -target ms and a memory phase sized for -memory-target ms on the
claimed class) and a simulated fleet of -nodes nodes against it, every node
running the production attestor (attest.Agent) over the public gRPC API
through a modelled wide-area link (a base round trip drawn once per node in
20-400 ms, ±20% per call, 1% of calls losing a packet for an extra second).
-honest percent of the nodes are honest; the rest are spread over the
adversarial kinds in fixed shares:

  cpu-spoofer       20%  no GPU: a reference CPU or a 128-core AMX server
  weaker-card       23%  a weaker card claiming a better class
  clone              4%  one GPU behind 5 identities with its one fingerprint
  relay              3%  one GPU answering for 4 identities with their own
                         fingerprints
  garbage           10%  random commitments and proofs
  partial            5%  computes half the cells
  grinder            5%  computes half the cells and grinds roots
  replay             4%  replays its first answer
  flaky              2%  honest, unavailable for 30% of challenges
  late-joiner        5%  spoofers and weaker cards registering -late-after
                         into the run
  silent             3%  honest for 2 challenges, then silent
  identity-copier    6%  a weaker card presenting an honest node's
                         fingerprint

(of the default 90% adversarial; the shares scale with -honest). The
cluster is real: admission (the default budget of new registrations),
verification of every proof and memory-phase check, the replicated state
machine and the reputation model with its default parameters. The nodes'
devices are simulated: they compute the stand-in phases and the genuine
test-profile proof of every challenge they answer honestly, and take the
time the class model gives their actual hardware.

It runs until every adversarial node is rejected or has had -rounds
decided challenges and every honest node has had -rounds, printing progress
to standard error every -progress, then prints per kind: the nodes, the
share rejected after 1, 2, 3 ... decided challenges (0: before any, e.g.
a duplicate identity decided at an epoch's close), the median and 90th
percentile time from registration to rejection, and the nodes ever
flagged (suspect or rejected) with the time they spent flagged; then the
run's totals: challenges, wall time, the state's size per node and the
cluster's CPU per node per hour (CPU profile samples of the cluster's
goroutines; the fleet's are labelled and left out).

With -shadow the cluster runs in shadow mode: the table shows what
enforcement would have done, and the report counts the statuses the
epoch reports actually published.

Exit status: 0 the report was printed, 1 the cluster failed or -timeout
passed first (the report so far is printed), 2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			fs.IntVar(&ff.nodes, "nodes", 10000, "nodes in the fleet")
			fs.IntVar(&ff.honest, "honest", 10, "`percent` of the nodes that are honest")
			fs.IntVar(&ff.rounds, "rounds", 3, "decided challenges to wait for per node")
			fs.DurationVar(&ff.interval, "interval", 0, "mean time between challenges of a node (0: sized to the fleet's proving, 180 ms per node and at least a minute: 30m for 10,000 nodes)")
			fs.DurationVar(&ff.lateAfter, "late-after", 0, "when late joiners register (0: a third of -interval into the run)")
			fs.IntVar(&ff.stormSize, "storm-size", 0, "nodes drawn at random into each storm (0: the scheduler's default)")
			fs.Uint64Var(&ff.target, "target", gpuclass.DefaultTimedTargetMillis, "timed phase device time on the claimed class, in `ms`")
			fs.Uint64Var(&ff.memory, "memory-target", gpuclass.DefaultWalkTargetMillis, "memory phase walk time on the claimed class, in `ms` (0: no memory phase)")
			fs.DurationVar(&ff.epoch, "epoch", time.Minute, "epoch length (identity contests are decided at epoch close)")
			fs.DurationVar(&ff.proofWin, "proof-window", 10*time.Minute, "time for a proof after the commitment deadline (the members' default): a node that commits and never proves is decided when it ends")
			fs.DurationVar(&ff.timeout, "timeout", 3*time.Hour, "give up after this long")
			fs.DurationVar(&ff.progress, "progress", 30*time.Second, "progress line interval")
			fs.Uint64Var(&ff.seed, "seed", 1, "seed of the fleet's composition and link model")
			fs.BoolVar(&ff.shadow, "shadow", false, "run the cluster in shadow mode")
			fs.BoolVar(&ff.json, "json", false, "print the report as JSON")
			fs.StringVar(&ff.profile, "cpu-profile", "", "write the run's CPU profile to this `file` (samples of the fleet carry the label "+devcluster.FleetLabel+"=fleet)")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("eval fleet takes no arguments")
			}
			switch {
			case ff.nodes < 2:
				return usageError("-nodes must be at least 2")
			case ff.honest < 1 || ff.honest > 100:
				return usageError("-honest must be between 1 and 100")
			case ff.rounds <= 0:
				return usageError("-rounds must be positive")
			case ff.interval < 0 || ff.timeout <= 0 || ff.progress <= 0 || ff.epoch <= 0 || ff.proofWin <= 0:
				return usageError("-epoch, -proof-window, -timeout and -progress must be positive, -interval not negative")
			case ff.lateAfter < 0 || ff.stormSize < 0:
				return usageError("-late-after and -storm-size must not be negative")
			case ff.target == 0:
				return usageError("-target must be positive")
			}
			if ff.interval == 0 {
				ff.interval = fleetInterval(ff.nodes)
			}
			fleet, err := composeFleet(ff)
			if err != nil {
				return err
			}
			rep, runErr := runFleetEval(context.Background(), ff, fleet, ctx.Stderr)
			if rep == nil {
				return runErr
			}
			if ff.json {
				enc := json.NewEncoder(ctx.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := printFleetReport(ctx.Stdout, rep); err != nil {
				return err
			}
			return runErr
		},
	})
}

// fleetInterval is the default challenge interval of a fleet of n nodes.
// About a quarter of the fleet proves each round (the honest nodes, and
// the clones, relays, flaky and silent nodes and first replays that
// compute honestly), one genuine test-profile proof after another at
// about 0.3 s each on two cores beside the cluster: 180 ms per node keeps
// the proofs a round asks for within what the machine proves in the
// interval, so an honest node's proof is never late for want of CPU.
func fleetInterval(n int) time.Duration {
	return max(time.Minute, time.Duration(n)*180*time.Millisecond).Round(time.Second)
}

// fleetNode is one node of the evaluated fleet.
type fleetNode struct {
	Kind    string
	Profile string
	Delay   time.Duration
}

// composeFleet draws the fleet: honest nodes first (copiers copy them),
// then every adversarial kind's share, in a seeded order.
func composeFleet(ff fleetFlags) ([]fleetNode, error) {
	rng := rand.New(rand.NewPCG(ff.seed, 0x666c656574))
	honestClasses := []string{}
	for _, c := range gpuclass.Classes() {
		honestClasses = append(honestClasses, c.Name)
	}
	// Weaker cards and CPU servers claiming better classes: the pairs the
	// class model says a challenge catches.
	rows, err := modelRows(defaultEvalPairs(), ff.target, ff.memory)
	if err != nil {
		return nil, err
	}
	var weaker, servers []string
	for _, r := range rows {
		if r.Expected != expectCaught {
			continue
		}
		p := evalPair{r.Actual, r.Claimed}.profile()
		if r.Actual == gpuclass.CPU128 || r.Actual == gpuclass.CPU128AMX {
			servers = append(servers, p)
		} else {
			weaker = append(weaker, p)
		}
	}
	if len(weaker) == 0 || len(servers) == 0 {
		return nil, errors.New("the class model catches no weaker-card pair at these targets; raise -target or -memory-target")
	}
	premium := []string{"h100", "h200", "a100", "l40s", "rtx4090"}
	adversarial := 100 - ff.honest
	total := 0
	for _, k := range fleetKinds[1:] {
		total += k.Percent
	}
	counts := make([]int, len(fleetKinds))
	assigned := 0
	for i, k := range fleetKinds[1:] {
		counts[i+1] = ff.nodes * adversarial * k.Percent / (100 * total)
		assigned += counts[i+1]
	}
	counts[0] = ff.nodes - assigned
	var out []fleetNode
	lateAfter := ff.lateAfter
	if lateAfter == 0 {
		lateAfter = ff.interval / 3
	}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	group := 0
	for ki, k := range fleetKinds {
		for i := range counts[ki] {
			n := fleetNode{Kind: k.Name}
			switch k.Name {
			case "honest":
				n.Profile = honestClasses[i%len(honestClasses)]
			case "cpu-spoofer":
				if i%2 == 0 {
					n.Profile = "spoof-" + pick(premium)
				} else {
					n.Profile = pick(servers)
				}
			case "weaker-card":
				n.Profile = pick(weaker)
			case "clone":
				if i%5 == 0 {
					group++
				}
				n.Profile = "clone-" + pick(premium[:1]) + "@" + strconv.Itoa(group)
				if i%5 != 0 {
					n.Profile = out[len(out)-1].Profile
				}
			case "relay":
				if i%4 == 0 {
					group++
					n.Profile = "relay-" + pick(premium) + "@" + strconv.Itoa(group)
				} else {
					n.Profile = out[len(out)-1].Profile
				}
			case "garbage", "partial", "replay", "flaky", "silent":
				n.Profile = k.Name + "-" + pick(premium)
			case "grinder":
				n.Profile = "grind-" + pick(premium)
			case "late-joiner":
				if i%2 == 0 {
					n.Profile = "spoof-" + pick(premium)
				} else {
					n.Profile = pick(weaker)
				}
				n.Delay = lateAfter
			case "identity-copier":
				n.Profile = "copy-" + pick(weaker)
			default:
				return nil, fmt.Errorf("unknown fleet kind %q", k.Name)
			}
			out = append(out, n)
		}
	}
	if counts[0] == 0 {
		for _, n := range out {
			if n.Kind == "identity-copier" {
				return nil, errors.New("identity copiers need honest nodes to copy: raise -nodes or -honest")
			}
		}
	}
	return out, nil
}

// fleetKindReport is one row of the report.
type fleetKindReport struct {
	Kind  string `json:"kind"`
	Does  string `json:"does"`
	Nodes int    `json:"nodes"`
	// RejectedAfter[r] is how many nodes were rejected with r decided
	// challenges (the last element: r or more).
	RejectedAfter []int `json:"rejected_after_rounds"`
	Rejected      int   `json:"rejected"`
	// Flagged counts nodes ever suspect or rejected; FlaggedSeconds is
	// their time in those statuses, in all and the longest.
	Flagged           int     `json:"ever_flagged"`
	FlaggedSeconds    float64 `json:"flagged_seconds_total"`
	MaxFlaggedSeconds float64 `json:"flagged_seconds_max"`
	// Time from registration to rejection, seconds.
	DetectP50 float64 `json:"detect_p50_s"`
	DetectP90 float64 `json:"detect_p90_s"`
	// Statuses at the end.
	Final map[string]int `json:"final_status"`
	// Decided challenges of the kind's nodes at the end, in all.
	Decided int `json:"decided"`
	// Reasons counts the reason codes on the records of the kind's
	// flagged nodes at the end.
	Reasons map[string]int `json:"flagged_reasons,omitempty"`
}

// fleetReport is the whole report.
type fleetReport struct {
	Nodes            int               `json:"nodes"`
	Seed             uint64            `json:"seed"`
	Rounds           int               `json:"rounds"`
	IntervalSeconds  float64           `json:"interval_s"`
	Shadow           bool              `json:"shadow"`
	Complete         bool              `json:"complete"`
	WallSeconds      float64           `json:"wall_s"`
	Kinds            []fleetKindReport `json:"kinds"`
	Verdicts         uint64            `json:"verdicts"`
	Decided          int               `json:"decided_challenges"`
	StateBytes       int64             `json:"state_bytes_per_member"`
	RaftBytes        int64             `json:"raft_log_and_snapshot_bytes_per_member"`
	ClusterCPU       float64           `json:"cluster_cpu_s"`
	FleetCPU         float64           `json:"fleet_cpu_s"`
	CPUPerNodeHour   float64           `json:"cluster_cpu_ms_per_node_hour"`
	Published        map[string]int    `json:"published_status,omitempty"`
	AdversarialNodes int               `json:"adversarial_nodes"`
	AdversaryCaught  int               `json:"adversarial_rejected"`
	HonestFlagged    int               `json:"honest_ever_flagged"`
}

// nodeWatch is what the observer knows of one node.
type nodeWatch struct {
	kind       string
	status     truegpuv1.NodeStatus
	published  truegpuv1.NodeStatus
	decided    int
	registered int64 // unix ms
	rejectedAt int64 // unix ms of the first rejection, 0 if none
	toReject   int   // decided challenges at the first rejection, -1 unknown
	flagged    bool
	flagSince  int64 // unix ms the current flagged spell began, 0 if none
	flagTotal  int64 // ms flagged in closed spells
	flagMax    int64
	done       bool
	reasons    []string  // reason codes on the node's record
	readAt     time.Time // last GetNode
	changed    bool      // a status change arrived since readAt
}

func flaggedStatus(s truegpuv1.NodeStatus) bool {
	return s == truegpuv1.NodeStatus_NODE_STATUS_SUSPECT || s == truegpuv1.NodeStatus_NODE_STATUS_REJECTED
}

// fleetObserver follows the fleet through the public API.
type fleetObserver struct {
	mu     sync.Mutex
	nodes  map[string]*nodeWatch
	order  []string
	rounds int
}

// change applies one status change seen on the score stream.
func (o *fleetObserver) change(c *truegpuv1.ScoreChange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.nodes[strings.ToLower(c.GetAddress())]
	if n == nil {
		return
	}
	o.setStatus(n, c.GetNewStatus(), c.GetAtUnixMs())
	n.changed = true
}

// setStatus records a status seen at unix ms at.
func (o *fleetObserver) setStatus(n *nodeWatch, s truegpuv1.NodeStatus, at int64) {
	if s == truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED {
		return
	}
	if flaggedStatus(s) && n.flagSince == 0 {
		n.flagSince, n.flagged = at, true
	}
	if !flaggedStatus(s) && n.flagSince != 0 {
		d := max(at-n.flagSince, 0)
		n.flagTotal += d
		n.flagMax = max(n.flagMax, d)
		n.flagSince = 0
	}
	if s == truegpuv1.NodeStatus_NODE_STATUS_REJECTED && n.rejectedAt == 0 {
		n.rejectedAt, n.toReject = at, -1
	}
	n.status = s
}

// read refreshes one node from GetNode.
func (o *fleetObserver) read(ctx context.Context, rep truegpuv1.ReputationServiceClient, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := rep.GetNode(cctx, &truegpuv1.GetNodeRequest{Address: addr})
	if status.Code(err) == codes.NotFound {
		return nil // not registered yet: a late joiner, or admission's queue
	}
	if err != nil {
		return err
	}
	r := resp.GetNode()
	ct := r.GetCounters()
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.nodes[addr]
	n.readAt, n.changed = time.Now(), false
	n.decided = int(ct.GetAccepted() + ct.GetRejected() + ct.GetMissed())
	n.registered = r.GetRegisteredAtUnixMs()
	n.published = r.GetPublishedStatus()
	n.reasons = n.reasons[:0]
	for _, rs := range r.GetReasons() {
		n.reasons = append(n.reasons, rs.GetCode())
	}
	if r.GetStatus() != n.status {
		o.setStatus(n, r.GetStatus(), r.GetUpdatedAtUnixMs())
	}
	if n.rejectedAt != 0 && n.toReject < 0 {
		n.toReject = n.decided
	}
	n.done = n.status == truegpuv1.NodeStatus_NODE_STATUS_REJECTED && n.kind != "honest" || n.decided >= o.rounds
	return nil
}

// pass reads, with a few concurrent readers, every node when all is
// true, and otherwise the nodes not yet done that changed status since
// they were last read or were read longer than every ago.
func (o *fleetObserver) pass(ctx context.Context, rep truegpuv1.ReputationServiceClient, all bool, every time.Duration) error {
	o.mu.Lock()
	var todo []string
	now := time.Now()
	for _, a := range o.order {
		n := o.nodes[a]
		if all || n.changed || !n.done && now.Sub(n.readAt) >= every {
			todo = append(todo, a)
		}
	}
	o.mu.Unlock()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 4 {
		wg.Go(func() {
			for a := range work {
				if err := o.read(ctx, rep, a); err != nil {
					mu.Lock()
					first = cmp.Or(first, fmt.Errorf("node %s: %w", a, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, a := range todo {
		select {
		case work <- a:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return first
}

// counts returns how many nodes are done, rejected and decided in all.
func (o *fleetObserver) counts() (done, rejected, decided int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.nodes {
		if n.done {
			done++
		}
		if n.status == truegpuv1.NodeStatus_NODE_STATUS_REJECTED {
			rejected++
		}
		decided += n.decided
	}
	return done, rejected, decided
}

// watch follows the score stream of a member until ctx ends, reopening it
// when it breaks.
func (o *fleetObserver) watch(ctx context.Context, rep truegpuv1.ReputationServiceClient) {
	for ctx.Err() == nil {
		stream, err := rep.WatchScores(ctx, &truegpuv1.WatchScoresRequest{})
		if err == nil {
			for {
				m, err := stream.Recv()
				if err != nil {
					break
				}
				o.change(m.GetChange())
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// runFleetEval runs the fleet and builds the report. It returns the report
// so far with an error when the run did not complete.
func runFleetEval(ctx context.Context, ff fleetFlags, nodes []fleetNode, progress io.Writer) (*fleetReport, error) {
	ctx, cancel := context.WithTimeout(ctx, ff.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "truegpu-eval-fleet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(progress, "starting a 3-member development cluster and %d simulated nodes (%d%% honest, challenge interval %v, timed target %d ms, memory target %d ms, seed %d)\n",
		len(nodes), ff.honest, ff.interval, ff.target, ff.memory, ff.seed)
	c, err := devcluster.Start(ctx, devcluster.Options{
		Dir: dir, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		ChallengeInterval: ff.interval, EpochInterval: ff.epoch,
		ProofWindow:       ff.proofWin,
		TimedTargetMillis: ff.target, MemoryTargetMillis: ff.memory,
		RandomStormSize: ff.stormSize, Shadow: ff.shadow,
		Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("start the development cluster: %w", err)
	}
	defer c.Close()
	// The profile starts once the cluster runs (its key setup is not the
	// fleet's cost).
	var cpu bytes.Buffer
	profiling := pprof.StartCPUProfile(&cpu) == nil
	stopProfile := sync.OnceFunc(func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	})
	defer stopProfile()

	fo := devcluster.FleetOptions{Jitter: devcluster.DefaultJitter()}
	fo.Jitter.Seed = ff.seed
	for _, n := range nodes {
		fo.Nodes = append(fo.Nodes, n.Profile)
		fo.Delays = append(fo.Delays, n.Delay)
	}
	var fleet *devcluster.Fleet
	// The fleet's goroutines, including its connections' own, carry the
	// fleet label: everything else in the CPU profile is the cluster's.
	pprof.Do(ctx, pprof.Labels(devcluster.FleetLabel, "fleet"), func(ctx context.Context) {
		fleet, err = devcluster.StartFleet(ctx, c, fo)
	})
	if err != nil {
		return nil, fmt.Errorf("start the fleet: %w", err)
	}
	defer fleet.Close()

	obs := &fleetObserver{nodes: map[string]*nodeWatch{}, rounds: ff.rounds}
	for i, n := range fleet.Nodes {
		a := strings.ToLower(n.Key.Address().String())
		obs.nodes[a] = &nodeWatch{kind: nodes[i].Kind, toReject: -1}
		obs.order = append(obs.order, a)
	}
	// Read through a member that is not the leader: the public read path.
	addr := c.Nodes[0].GRPCAddr
	if l := c.Leader(); l == c.Nodes[0] && len(c.Nodes) > 1 {
		addr = c.Nodes[1].GRPCAddr
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rep := truegpuv1.NewReputationServiceClient(conn)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go pprof.Do(wctx, pprof.Labels(devcluster.FleetLabel, "observer"), func(ctx context.Context) { obs.watch(ctx, rep) })

	start := time.Now()
	var runErr error
	pprof.Do(ctx, pprof.Labels(devcluster.FleetLabel, "observer"), func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				runErr = fmt.Errorf("not every node was decided within %v (raise -timeout); the report shows the run so far", ff.timeout)
				return
			case <-time.After(ff.progress):
			}
			// Each undone node is read at least every two progress
			// intervals, and on every status change.
			err := obs.pass(ctx, rep, false, 2*ff.progress-time.Second)
			done, rejected, decided := obs.counts()
			st := &fleet.Stats
			fmt.Fprintf(progress, "%6.0fs  %d registrations, %d decided challenges, %d rejected, %d of %d nodes done\n",
				time.Since(start).Seconds(), st.Registered.Load(), decided, rejected, done, len(nodes))
			if err != nil {
				fmt.Fprintf(progress, "        reading nodes: %v\n", err)
			}
			if err == nil && done == len(nodes) {
				return
			}
		}
	})
	wall := time.Since(start)
	stopWatch()
	// A last full read after the fleet stops, for the final statuses.
	fleet.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer rcancel()
	if err := obs.pass(rctx, rep, true, 0); err != nil {
		return nil, fmt.Errorf("read the final statuses: %w", err)
	}
	stopProfile()
	rep2 := buildFleetReport(ff, obs, nodes, wall)
	rep2.Complete = runErr == nil
	if profiling {
		rep2.ClusterCPU, rep2.FleetCPU = splitCPU(cpu.Bytes())
		rep2.CPUPerNodeHour = rep2.ClusterCPU * 1000 / float64(len(nodes)) / wall.Hours()
	}
	stats, err := rep.GetFleetStats(rctx, &truegpuv1.GetFleetStatsRequest{})
	if err == nil {
		rep2.Verdicts = stats.GetTotalVerdicts()
	}
	rep2.StateBytes = memberBytes(dir, "state")
	rep2.RaftBytes = memberBytes(dir, "raft") + memberBytes(dir, "snapshots")
	if ff.profile != "" {
		if err := os.WriteFile(ff.profile, cpu.Bytes(), 0o644); err != nil {
			return rep2, fmt.Errorf("write the CPU profile: %w", err)
		}
	}
	return rep2, runErr
}

// splitCPU sums a CPU profile's samples into the cluster's and the
// fleet's (labelled) seconds. The observer's samples count as neither.
func splitCPU(raw []byte) (cluster, fleet float64) {
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil || len(p.SampleType) < 2 {
		return 0, 0
	}
	for _, s := range p.Sample {
		ns := float64(s.Value[1]) / 1e9
		switch side := s.Label[devcluster.FleetLabel]; {
		case len(side) == 0:
			cluster += ns
		case side[0] == "fleet":
			fleet += ns
		}
	}
	return cluster, fleet
}

// memberBytes is the mean size of one subdirectory of the members' data
// directories ("state", "raft", "snapshots").
func memberBytes(dir, sub string) int64 {
	var total int64
	members := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		members++
		n, _ := devcluster.DirSize(filepath.Join(dir, e.Name(), sub))
		total += n
	}
	if members == 0 {
		return 0
	}
	return total / int64(members)
}

// buildFleetReport turns the observer's view into the report.
func buildFleetReport(ff fleetFlags, obs *fleetObserver, nodes []fleetNode, wall time.Duration) *fleetReport {
	obs.mu.Lock()
	defer obs.mu.Unlock()
	now := time.Now().UnixMilli()
	r := &fleetReport{Nodes: len(nodes), Seed: ff.seed, Rounds: ff.rounds, IntervalSeconds: ff.interval.Seconds(), Shadow: ff.shadow, WallSeconds: wall.Seconds()}
	byKind := map[string]*fleetKindReport{}
	detect := map[string][]float64{}
	for _, k := range fleetKinds {
		kr := &fleetKindReport{Kind: k.Name, Does: k.Does, RejectedAfter: make([]int, ff.rounds+2), Final: map[string]int{}}
		byKind[k.Name] = kr
	}
	published := map[string]int{}
	for _, a := range obs.order {
		n := obs.nodes[a]
		kr := byKind[n.kind]
		kr.Nodes++
		kr.Decided += n.decided
		kr.Final[statusWord(n.status)]++
		published[statusWord(n.published)]++
		if n.rejectedAt != 0 {
			kr.Rejected++
			i := max(n.toReject, n.decided)
			if n.toReject >= 0 {
				i = n.toReject
			}
			kr.RejectedAfter[min(i, len(kr.RejectedAfter)-1)]++
			if n.registered > 0 {
				detect[n.kind] = append(detect[n.kind], float64(n.rejectedAt-n.registered)/1000)
			}
		}
		if n.flagged {
			kr.Flagged++
			if kr.Reasons == nil {
				kr.Reasons = map[string]int{}
			}
			for _, code := range n.reasons {
				kr.Reasons[code]++
			}
			total, longest := n.flagTotal, n.flagMax
			if n.flagSince != 0 {
				total += now - n.flagSince
				longest = max(longest, now-n.flagSince)
			}
			kr.FlaggedSeconds += float64(total) / 1000
			kr.MaxFlaggedSeconds = max(kr.MaxFlaggedSeconds, float64(longest)/1000)
		}
	}
	for _, k := range fleetKinds {
		kr := byKind[k.Name]
		if kr.Nodes == 0 {
			continue
		}
		ds := detect[k.Name]
		slices.Sort(ds)
		if len(ds) > 0 {
			kr.DetectP50 = ds[len(ds)/2]
			kr.DetectP90 = ds[len(ds)*9/10]
		}
		if k.Name == "honest" {
			r.HonestFlagged = kr.Flagged
		} else {
			r.AdversarialNodes += kr.Nodes
			r.AdversaryCaught += kr.Rejected
		}
		r.Decided += kr.Decided
		r.Kinds = append(r.Kinds, *kr)
	}
	if ff.shadow {
		r.Published = published
	}
	return r
}

// printFleetReport prints the report as tables.
func printFleetReport(w io.Writer, r *fleetReport) error {
	header := []string{"KIND", "NODES", "REJECTED"}
	for i := range r.Rounds + 2 {
		switch {
		case i == r.Rounds+1:
			header = append(header, "≤"+strconv.Itoa(i)+"+")
		default:
			header = append(header, "≤"+strconv.Itoa(i))
		}
	}
	header = append(header, "DETECT_P50_S", "DETECT_P90_S", "EVER_FLAGGED", "FLAGGED_S_MAX", "FINAL")
	t := newTable(w, header...)
	for _, k := range r.Kinds {
		cells := []string{k.Kind, strconv.Itoa(k.Nodes), share(k.Rejected, k.Nodes)}
		cum := 0
		for _, c := range k.RejectedAfter {
			cum += c
			cells = append(cells, share(cum, k.Nodes))
		}
		p50, p90 := "-", "-"
		if k.Rejected > 0 {
			p50, p90 = strconv.FormatFloat(k.DetectP50, 'f', 0, 64), strconv.FormatFloat(k.DetectP90, 'f', 0, 64)
		}
		var final []string
		for _, s := range []string{"probation", "trusted", "suspect", "rejected", "-"} {
			if k.Final[s] > 0 {
				final = append(final, s+" "+strconv.Itoa(k.Final[s]))
			}
		}
		cells = append(cells, p50, p90, strconv.Itoa(k.Flagged), strconv.FormatFloat(k.MaxFlaggedSeconds, 'f', 0, 64), strings.Join(final, ", "))
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	complete := "complete"
	if !r.Complete {
		complete = "INCOMPLETE (timed out)"
	}
	fmt.Fprintf(w, "\n%d nodes, seed %d, %s in %.0f s: %d of %d adversarial nodes rejected (%s); %d honest nodes ever flagged\n",
		r.Nodes, r.Seed, complete, r.WallSeconds, r.AdversaryCaught, r.AdversarialNodes, share(r.AdversaryCaught, r.AdversarialNodes), r.HonestFlagged)
	fmt.Fprintf(w, "%d decided challenges (%d verdicts on proofs); state machine %.1f MiB per member (%.0f bytes per node), Raft log and snapshots %.1f MiB; cluster CPU %.0f s (%.1f ms per node per hour), fleet CPU %.0f s\n",
		r.Decided, r.Verdicts, float64(r.StateBytes)/(1<<20), float64(r.StateBytes)/float64(max(r.Nodes, 1)), float64(r.RaftBytes)/(1<<20), r.ClusterCPU, r.CPUPerNodeHour, r.FleetCPU)
	for _, k := range r.Kinds {
		if len(k.Reasons) == 0 {
			continue
		}
		var rs []string
		for code, n := range k.Reasons {
			rs = append(rs, fmt.Sprintf("%s %d", code, n))
		}
		slices.Sort(rs)
		fmt.Fprintf(w, "reasons on flagged %s nodes: %s\n", k.Kind, strings.Join(rs, ", "))
	}
	if r.Shadow {
		var ps []string
		for s, n := range r.Published {
			ps = append(ps, s+" "+strconv.Itoa(n))
		}
		slices.Sort(ps)
		fmt.Fprintf(w, "shadow mode: the table is what enforcement would have done; epoch reports published %s\n", strings.Join(ps, ", "))
	}
	return nil
}

// share formats a share as a whole percentage.
func share(n, of int) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 0, 64) + "%"
}
