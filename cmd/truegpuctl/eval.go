package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
)

// evalFlags are the flags of "eval classes".
type evalFlags struct {
	target   uint64
	memory   uint64
	rounds   int
	interval time.Duration
	timeout  time.Duration
	progress time.Duration
	jitter   bool
	seed     uint64
	model    bool
	json     bool
	nodes    string
}

func init() {
	var ef evalFlags
	register(&command{
		Name:  "eval",
		Usage: "classes [flags]",
		Short: "measure how well the timed phase separates GPU classes (development cluster)",
		Long: `
Eval classes runs a development cluster in this process (three Raft members
on loopback, unsafe dev keys, the test workload profile with a timed phase
sized for -target ms of device time on the claimed class and a memory phase
whose walk is sized for -memory-target ms) with one simulated node per
(actual hardware, claimed class) pair:

  - an honest node of every claimable class;
  - every class among H200, H100-SXM, A100-80GB, A100-40GB, L40S, RTX-4090
    and RTX-3090 claiming each of the others;
  - the unclaimable hardware models cpu-128 (128 cores, AVX-512 VNNI) and
    cpu-128-amx (128 cores, AMX) claiming each of those classes;
  - H100-PCIe claiming H100-SXM.

Nodes compute a small stand-in for the timed and memory phases while their
simulated devices take the time the class model gives their actual
hardware for the claimed class's production phases. With -jitter every node talks to the
cluster over a modelled wide-area link: a base round trip drawn once per
node in 20-400 ms, ±20% per call, and 1% of calls losing a packet for an
extra second.

It waits until every node has had -rounds decided challenges (or was
rejected), printing progress to standard error every -progress, then prints
one row per pair:

  ACTUAL, CLAIMED   the hardware and the class it claims
  MODEL_MS          modelled device time of the actual hardware on the
                    claimed class's production timed phase (and table fill
                    with a memory phase)
  DEADLINE_MS       the claimed class's commitment deadline
  SLACK_MS          DEADLINE_MS less MODEL_MS: what is left for the
                    challenge's delivery, the commitment's return and the
                    oracle (the deadline grants 750 ms for them); a
                    positive slack below that is at the margin
  WALK_MS           modelled walk time of the actual hardware on the
                    claimed class's memory phase ("-" without one)
  WALK_DEADLINE_MS  the claimed class's walk deadline, counted from the
                    commitment's recording
  THROUGHPUT        the hardware's effective int8 rate over the claimed
                    class's (Int8GOPS × GEMM efficiency)
  EXPECTED          what the class model predicts: "pass" (honest),
                    "caught" (MODEL_MS or WALK_MS exceeds its deadline), "pass
                    (weaker claim)" (the hardware matches or beats the
                    claim), "pass (within tolerance)" (more than two thirds
                    of the claimed throughput, bandwidth and memory), or
                    "needs bandwidth/capacity evidence (not in the timed
                    phase)" (throughput within tolerance but two thirds or
                    less of the claimed bandwidth or memory, with
                    -memory-target 0: the timed phase alone cannot tell
                    them apart)
  STATUS            the node's final status
  DECIDED           decided challenges (accepted, rejected, missed); a node
                    may have more than -rounds when challenges overlap
  TO_REJECT         decided challenges until rejection, or "-"
  FALSE_FLAGS       honest rows: late, missed or rejected challenges and
                    CAPACITY_SLOW penalties
  OBSERVED, MATCH   "caught" (rejected), "late" (late or missed, not yet
                    rejected) or "pass", and whether it matches EXPECTED:
                    a row expected caught also matches while every one of
                    its decided challenges was late or missed

Reputation parameters: as the defaults, except that ConfidenceK is 0.1
event instead of 10, so that an honest node can become trusted within a
few accepted challenges. Rejection is unchanged: a node is rejected once one
dimension holds three events of negative evidence (after decay) at a success
rate below 30%; late commitments count against capacity, missed ones against
liveness.

With -model no cluster starts: the table holds the class model's columns
only, and a Markdown class-separation table follows it that adds the
memory phase: for every pair of GPU classes and CPU models, the first
commitment's work (with the table fill) and the walk (sized for 4000 ms on
the claimed class), each against its deadline, and which phase catches the
pair and why. The rows' two_phase_verdict in -json is that verdict. -nodes replaces the pair list with sim device profiles, e.g.
"h100,rtx3090-as-h100,cpu128-as-h100,l40s". -json prints the rows as JSON.

Exit status: 0 the table was printed (whether or not rows match), 1 the
cluster failed or the timeout passed first, 2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			fs.Uint64Var(&ef.target, "target", gpuclass.DefaultTimedTargetMillis, "timed phase device time on the claimed class, in `ms`")
			fs.Uint64Var(&ef.memory, "memory-target", gpuclass.DefaultWalkTargetMillis, "memory phase walk time on the claimed class, in `ms` (0: no memory phase)")
			fs.IntVar(&ef.rounds, "rounds", 3, "decided challenges to wait for per node")
			fs.DurationVar(&ef.interval, "interval", 20*time.Second, "mean time between challenges of a node (the fleet's proofs share one proving slot: shorter intervals queue proofs)")
			fs.DurationVar(&ef.timeout, "timeout", 10*time.Minute, "give up after this long")
			fs.DurationVar(&ef.progress, "progress", 10*time.Second, "progress line interval")
			fs.BoolVar(&ef.jitter, "jitter", true, "model a wide-area link between nodes and the cluster")
			fs.Uint64Var(&ef.seed, "seed", 1, "seed of the link model")
			fs.BoolVar(&ef.model, "model", false, "print the class model's table only; start no cluster")
			fs.BoolVar(&ef.json, "json", false, "print the rows as JSON")
			fs.StringVar(&ef.nodes, "nodes", "", "comma-separated sim device `profiles` to evaluate instead of the full pair list")
		},
		Run: func(ctx *runContext, args []string) error {
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) != 1 || pos[0] != "classes" {
				return usageError("eval takes one argument: classes (see also 'eval fleet' and 'eval scale')")
			}
			switch {
			case ef.target == 0:
				return usageError("-target must be positive")
			case ef.rounds <= 0:
				return usageError("-rounds must be positive")
			case ef.interval <= 0 || ef.timeout <= 0 || ef.progress <= 0:
				return usageError("-interval, -timeout and -progress must be positive")
			}
			pairs := defaultEvalPairs()
			if ef.nodes != "" {
				if pairs, err = parseEvalPairs(ef.nodes); err != nil {
					return usageError("-nodes: %v", err)
				}
			}
			rows, err := modelRows(pairs, ef.target, ef.memory)
			if err != nil {
				return err
			}
			if !ef.model {
				if err := runEvalCluster(context.Background(), ef, rows, ctx.Stderr); err != nil {
					return err
				}
			}
			if ef.json {
				enc := json.NewEncoder(ctx.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(evalReport{TargetMillis: ef.target, Model: ef.model, Rows: rows, Summary: summarize(rows, ef.model)})
			}
			if err := printEvalTable(ctx.Stdout, rows, ef.model); err != nil || !ef.model {
				return err
			}
			return printSeparation(ctx.Stdout, ef.target, cmp.Or(ef.memory, gpuclass.DefaultWalkTargetMillis))
		},
	})
}

// Expectations of a row.
const (
	expectPass      = "pass"
	expectCaught    = "caught"
	expectWeaker    = "pass (weaker claim)"
	expectTolerance = "pass (within tolerance)"
	expectEvidence  = "needs bandwidth/capacity evidence (not in the timed phase)"
)

// evalPair is one (actual hardware, claimed class) pair.
type evalPair struct{ Actual, Claimed string }

func (p evalPair) profile() string {
	if p.Actual == p.Claimed {
		return p.Claimed
	}
	return p.Actual + "-as-" + p.Claimed
}

// evalRow is one row of the confusion table.
type evalRow struct {
	Actual          string `json:"actual"`
	Claimed         string `json:"claimed"`
	ModelMillis     uint64 `json:"model_ms"`
	DeadlineMillis  uint64 `json:"deadline_ms"`
	ThroughputRatio string `json:"throughput_ratio"`
	Expected        string `json:"expected"`
	Status          string `json:"status,omitempty"`
	Decided         int    `json:"decided"`
	ToReject        int    `json:"to_reject,omitempty"`
	Accepted        int    `json:"accepted"`
	Late            int    `json:"late_or_missed"`
	FalseFlags      int    `json:"false_flags"`
	Observed        string `json:"observed,omitempty"`
	Match           *bool  `json:"match,omitempty"`
	Address         string `json:"address,omitempty"`
	// The two-phase model: the first commitment's work with the memory
	// phase's table fill, the walk, their deadlines and the verdict of
	// both phases together (see separate).
	FirstPhaseMillis   uint64 `json:"first_phase_model_ms"`
	FirstPhaseDeadline uint64 `json:"first_phase_deadline_ms"`
	WalkMillis         uint64 `json:"walk_model_ms"`
	WalkDeadline       uint64 `json:"walk_deadline_ms"`
	Verdict            string `json:"two_phase_verdict"`
	// memory is whether the evaluation runs the memory phase (the walk
	// columns are printed).
	memory bool
}

func (r *evalRow) honest() bool { return r.Actual == r.Claimed }

// evalReport is the -json output.
type evalReport struct {
	TargetMillis uint64      `json:"target_ms"`
	Model        bool        `json:"model_only"`
	Rows         []evalRow   `json:"rows"`
	Summary      evalSummary `json:"summary"`
}

type evalSummary struct {
	Pairs          int `json:"pairs"`
	ExpectedCaught int `json:"expected_caught"`
	// Caught and LateOnly count rows expected caught: rejected, and late
	// or missed on every decided challenge without being rejected yet.
	Caught   int `json:"caught"`
	LateOnly int `json:"late_only"`
	// Unexpected counts rows not expected caught that were rejected.
	Unexpected    int `json:"rejected_unexpectedly"`
	NeedsEvidence int `json:"needs_evidence"`
	Matched       int `json:"matched"`
	HonestFlags   int `json:"honest_false_flags"`
}

// evalClasses are the claimable classes liars claim among.
var evalClasses = []string{gpuclass.H200, gpuclass.H100SXM, gpuclass.A100_80, gpuclass.A100_40, gpuclass.L40S, gpuclass.RTX4090, gpuclass.RTX3090}

// defaultEvalPairs is the full pair list.
func defaultEvalPairs() []evalPair {
	var out []evalPair
	for _, c := range gpuclass.Classes() {
		out = append(out, evalPair{c.Name, c.Name})
	}
	for _, a := range evalClasses {
		for _, c := range evalClasses {
			if a != c {
				out = append(out, evalPair{a, c})
			}
		}
	}
	for _, a := range []string{gpuclass.CPU128, gpuclass.CPU128AMX} {
		for _, c := range evalClasses {
			out = append(out, evalPair{a, c})
		}
	}
	return append(out, evalPair{gpuclass.H100PCIe, gpuclass.H100SXM})
}

// evalAliases are the short class names the sim device profiles accept.
var evalAliases = map[string]string{
	"h100": gpuclass.H100SXM, "a100": gpuclass.A100_80, "rtx4090": gpuclass.RTX4090, "4090": gpuclass.RTX4090,
	"rtx3090": gpuclass.RTX3090, "3090": gpuclass.RTX3090, "cpu128": gpuclass.CPU128, "cpu128amx": gpuclass.CPU128AMX,
}

func evalClassName(s string) (string, error) {
	if c, ok := evalAliases[strings.ToLower(s)]; ok {
		return c, nil
	}
	c, err := gpuclass.LookupHardware(s)
	if err != nil {
		return "", err
	}
	return c.Name, nil
}

// parseEvalPairs reads "h100,rtx3090-as-h100,...".
func parseEvalPairs(s string) ([]evalPair, error) {
	var out []evalPair
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, c, lying := strings.Cut(strings.ToLower(f), "-as-")
		if !lying {
			c = a
		}
		actual, err := evalClassName(a)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		claimed, err := evalClassName(c)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		if _, err := gpuclass.Lookup(claimed); err != nil {
			return nil, fmt.Errorf("%q: %s cannot be claimed", f, claimed)
		}
		out = append(out, evalPair{actual, claimed})
	}
	if len(out) == 0 {
		return nil, errors.New("no profiles given")
	}
	return out, nil
}

// effective is a class's effective int8 rate (GOPS × efficiency percent).
func effective(c gpuclass.Class) uint64 { return c.Int8GOPS * c.GEMMEfficiencyPercent }

// modelRows fills the model's columns, as the oracle sizes challenges: the
// test profile's workload plus the timed phase of the claimed class.
func modelRows(pairs []evalPair, target, memTarget uint64) ([]evalRow, error) {
	p, err := prover.ProfileByName("test")
	if err != nil {
		return nil, err
	}
	var rows []evalRow
	for _, pr := range pairs {
		a, err := gpuclass.LookupHardware(pr.Actual)
		if err != nil {
			return nil, err
		}
		c, err := gpuclass.Lookup(pr.Claimed)
		if err != nil {
			return nil, err
		}
		m, n, k := c.TimedDims(target)
		deadline := gpuclass.TimedDeadline(c.ExpectedMillis(p.M, p.N, p.K) + c.TimedExpectedMillis(m, n, k))
		model := ceilDivU(a.ExpectedMicros(p.M, p.N, p.K), 1000) + a.TimedExpectedMillis(m, n, k)
		sep := separate(a, c, p, target, cmp.Or(memTarget, gpuclass.DefaultWalkTargetMillis))
		r := evalRow{Actual: a.Name, Claimed: c.Name, ModelMillis: model, DeadlineMillis: deadline,
			ThroughputRatio:  fmt.Sprintf("%.2f", float64(effective(a))/float64(effective(c))),
			FirstPhaseMillis: sep.First, FirstPhaseDeadline: sep.FirstDeadline,
			WalkMillis: sep.Walk, WalkDeadline: sep.WalkDeadline, Verdict: sep.verdict(), memory: memTarget > 0}
		if memTarget > 0 {
			// The cluster runs the memory phase: the first commitment
			// carries the table fill, and the walk has its own deadline.
			r.ModelMillis, r.DeadlineMillis = sep.First, sep.FirstDeadline
		}
		twoThirds := func(x, y uint64) bool { return 3*x <= 2*y }
		switch {
		case r.honest():
			r.Expected = expectPass
		case memTarget > 0 && sep.caught():
			r.Expected = expectCaught
		case model > deadline && memTarget == 0:
			r.Expected = expectCaught
		case memTarget == 0 && (twoThirds(a.MemoryBandwidthGBps, c.MemoryBandwidthGBps) || twoThirds(a.MemoryBytes, c.MemoryBytes)):
			r.Expected = expectEvidence
		case effective(a) >= effective(c) && a.MemoryBandwidthGBps >= c.MemoryBandwidthGBps && a.MemoryBytes >= c.MemoryBytes:
			r.Expected = expectWeaker
		default:
			r.Expected = expectTolerance
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// separation is the two-phase class model of one (actual hardware,
// claimed class) pair on the claimed class's production challenge: the
// first commitment (the profile workload, the timed phase and the memory
// phase's table fill) and the memory phase's walk, each against the
// claimed class's deadline for it (gpuclass.TimedDeadline).
type separation struct {
	Actual, Claimed gpuclass.Class
	// First is the actual hardware's work before the first commitment;
	// FirstDeadline is the claimed class's deadline for it.
	First, FirstDeadline uint64
	// Walk is the actual hardware's walk on the claimed class's table
	// (gpuclass.Class.WalkActualMillis); WalkDeadline is the claimed
	// class's walk deadline.
	Walk, WalkDeadline uint64
	// Held of the table's Blocks blocks fit in the actual hardware.
	Held, Blocks uint64
}

// separate models the pair with the timed phase sized for timedTarget ms
// and the walk for walkTarget ms on the claimed class.
func separate(a, c gpuclass.Class, p *prover.Profile, timedTarget, walkTarget uint64) separation {
	m, n, k := c.TimedDims(timedTarget)
	blocks, lanes, steps := c.WalkDims(walkTarget)
	return separation{
		Actual: a, Claimed: c,
		First: addSat(ceilDivU(a.ExpectedMicros(p.M, p.N, p.K), 1000), a.TimedExpectedMillis(m, n, k), a.FillActualMillis(blocks)),
		FirstDeadline: gpuclass.TimedDeadline(addSat(c.ExpectedMillis(p.M, p.N, p.K), c.TimedExpectedMillis(m, n, k),
			c.FillExpectedMillis(blocks))),
		Walk:         a.WalkActualMillis(c, blocks, lanes, steps),
		WalkDeadline: gpuclass.TimedDeadline(c.WalkExpectedMillis(blocks, lanes, steps)),
		Held:         a.WalkHeldBlocks(blocks),
		Blocks:       blocks,
	}
}

// walkRate is a class's modelled walk bandwidth (GB/s × percent).
func walkRate(c gpuclass.Class) uint64 { return c.MemoryBandwidthGBps * c.WalkBandwidthPercent }

// weaknesses names what the actual hardware has at most two thirds of:
// the claimed class's effective int8 throughput, walk bandwidth or memory.
func (s separation) weaknesses() []string {
	twoThirds := func(x, y uint64) bool { return 3*x <= 2*y }
	var out []string
	if twoThirds(effective(s.Actual), effective(s.Claimed)) {
		out = append(out, "throughput")
	}
	if twoThirds(walkRate(s.Actual), walkRate(s.Claimed)) {
		out = append(out, "bandwidth")
	}
	if twoThirds(s.Actual.MemoryBytes, s.Claimed.MemoryBytes) {
		out = append(out, "memory")
	}
	return out
}

func (s separation) caught() bool { return s.First > s.FirstDeadline || s.Walk > s.WalkDeadline }

// verdict is the pair's verdict in Markdown: "honest"; "**caught**"
// naming the phase that overruns its deadline and why (the GEMM phase:
// throughput; the walk: memory when the hardware cannot hold the table,
// bandwidth when it reads slower than the claimed class); "*not caught*"
// naming what the hardware has at most two thirds of while meeting both
// deadlines; or "passes".
func (s separation) verdict() string {
	if s.Actual.Name == s.Claimed.Name {
		return "honest"
	}
	var phases []string
	if s.First > s.FirstDeadline {
		phases = append(phases, "GEMM: throughput")
	}
	if s.Walk > s.WalkDeadline {
		var why []string
		if s.Held < s.Blocks {
			why = append(why, "memory")
		}
		if walkRate(s.Actual) < walkRate(s.Claimed) {
			why = append(why, "bandwidth")
		}
		if len(why) == 0 {
			why = append(why, "hashing")
		}
		phases = append(phases, "walk: "+strings.Join(why, ", "))
	}
	if len(phases) > 0 {
		return "**caught** (" + strings.Join(phases, "; ") + ")"
	}
	if w := s.weaknesses(); len(w) > 0 {
		return "*not caught (" + strings.Join(w, ", ") + ")*"
	}
	return "passes"
}

// separationClaimed and separationActual are the columns and rows of the
// class-separation table: the GPU classes, and as hardware also the "cpu"
// reference node and the unclaimable CPU server models.
var (
	separationClaimed = []string{gpuclass.H200, gpuclass.H100SXM, gpuclass.H100PCIe, gpuclass.A100_80, gpuclass.A100_40,
		gpuclass.L40S, gpuclass.RTX4090, gpuclass.RTX3090}
	separationActual = append(slices.Clone(separationClaimed), gpuclass.CPU, gpuclass.CPU128, gpuclass.CPU128AMX)
)

// separationTable models every (actual, claimed) pair of the table,
// row by row.
func separationTable(timedTarget, walkTarget uint64) ([][]separation, error) {
	p, err := prover.ProfileByName("test")
	if err != nil {
		return nil, err
	}
	var out [][]separation
	for _, an := range separationActual {
		a, err := gpuclass.LookupHardware(an)
		if err != nil {
			return nil, err
		}
		var row []separation
		for _, cn := range separationClaimed {
			c, err := gpuclass.Lookup(cn)
			if err != nil {
				return nil, err
			}
			row = append(row, separate(a, c, p, timedTarget, walkTarget))
		}
		out = append(out, row)
	}
	return out, nil
}

// printSeparation prints the class-separation table in Markdown: per
// pair, the actual hardware's modelled first-phase work / its deadline ·
// walk work / its deadline, in seconds, and the verdict; then the pairs
// that are not caught.
func printSeparation(w io.Writer, timedTarget, walkTarget uint64) error {
	tab, err := separationTable(timedTarget, walkTarget)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n### Class separation with the memory phase (model)\n\n")
	fmt.Fprintf(w, "Each cell: the actual hardware's modelled work before the first commitment (test profile, timed phase sized for %d ms, table fill) / the claimed class's deadline for it · its walk (sized for %d ms) / the walk deadline, in seconds, and the verdict.\n\n", timedTarget, walkTarget)
	fmt.Fprintf(w, "| actual ↓ / claimed → | %s |\n|---|%s\n", strings.Join(separationClaimed, " | "), strings.Repeat("---|", len(separationClaimed)))
	var liars, caught int
	var missed []string
	for i, row := range tab {
		cells := make([]string, len(row))
		for j, s := range row {
			cells[j] = fmt.Sprintf("%s / %s · %s / %s %s", seconds(s.First), seconds(s.FirstDeadline), seconds(s.Walk), seconds(s.WalkDeadline), s.verdict())
			if s.Actual.Name == s.Claimed.Name {
				continue
			}
			liars++
			if s.caught() {
				caught++
			} else if wk := s.weaknesses(); len(wk) > 0 {
				missed = append(missed, fmt.Sprintf("%s as %s (%s)", s.Actual.Name, s.Claimed.Name, strings.Join(wk, ", ")))
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", separationActual[i], strings.Join(cells, " | "))
	}
	fmt.Fprintf(w, "\n%d pairs of different hardware: %d caught, %d pass, %d not caught with two thirds or less of the claimed throughput, walk bandwidth or memory", liars, caught, liars-caught, len(missed))
	if len(missed) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(missed, "; "))
	}
	fmt.Fprintln(w)
	return nil
}

// seconds formats milliseconds as seconds for the separation table.
func seconds(ms uint64) string {
	switch x := float64(ms) / 1000; {
	case ms == math.MaxUint64:
		return "∞"
	case x < 10:
		return strconv.FormatFloat(x, 'f', 2, 64)
	case x < 10000:
		return strconv.FormatFloat(x, 'f', 0, 64)
	default:
		return strconv.FormatFloat(x, 'g', 2, 64)
	}
}

// addSat adds, saturating at math.MaxUint64.
func addSat(xs ...uint64) uint64 {
	var sum uint64
	for _, x := range xs {
		if sum+x < sum {
			return math.MaxUint64
		}
		sum += x
	}
	return sum
}

// slack is the deadline less the modelled time: what is left for the
// network and the oracle.
func slack(r evalRow) string {
	return strconv.FormatInt(int64(r.DeadlineMillis)-int64(min(r.ModelMillis, 1<<62)), 10)
}

func ceilDivU(a, b uint64) uint64 { return (a + b - 1) / b }

// evalParams are the eval's reputation parameters (see the help text).
func evalParams() reputation.Params {
	p := reputation.DefaultParams()
	p.ConfidenceK = reputation.Unit / 10
	return p
}

// runEvalCluster runs the pairs on a development cluster and fills the
// observed columns of rows.
func runEvalCluster(ctx context.Context, ef evalFlags, rows []evalRow, progress io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, ef.timeout)
	defer cancel()
	fleet := devcluster.FleetOptions{}
	for _, r := range rows {
		fleet.Nodes = append(fleet.Nodes, evalPair{r.Actual, r.Claimed}.profile())
	}
	if ef.jitter {
		fleet.Jitter = devcluster.DefaultJitter()
		fleet.Jitter.Seed = ef.seed
	}
	params := evalParams()
	fmt.Fprintf(progress, "starting a 3-member development cluster with %d simulated nodes (timed target %d ms, memory target %d ms, challenge interval %v, jitter %v)\n",
		len(rows), ef.target, ef.memory, ef.interval, ef.jitter)
	c, err := devcluster.Start(ctx, devcluster.Options{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		ChallengeInterval: ef.interval, TimedTargetMillis: ef.target, MemoryTargetMillis: ef.memory,
		Reputation: &params, Fleet: fleet,
		Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard,
	})
	if err != nil {
		return fmt.Errorf("start the development cluster: %w", err)
	}
	defer c.Close()
	for i := range rows {
		rows[i].Address = c.Fleet.Nodes[i].Key.Address().String()
	}
	// Read through a member that is not the leader when there is one: the
	// public read path.
	addr := c.Nodes[0].GRPCAddr
	if l := c.Leader(); l == c.Nodes[0] && len(c.Nodes) > 1 {
		addr = c.Nodes[1].GRPCAddr
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rep := truegpuv1.NewReputationServiceClient(conn)

	start := time.Now()
	next := start.Add(ef.progress)
	for {
		done, total, rejected, err := observe(ctx, rep, rows, ef.rounds)
		if err == nil && done == len(rows) {
			fmt.Fprintf(progress, "%5.0fs  every node has %d decided challenges or is rejected: %d decided, %d rejected\n",
				time.Since(start).Seconds(), ef.rounds, total, rejected)
			break
		}
		if time.Now().After(next) {
			if err != nil {
				fmt.Fprintf(progress, "%5.0fs  reading nodes: %v\n", time.Since(start).Seconds(), err)
			} else {
				fmt.Fprintf(progress, "%5.0fs  %d of %d decided challenges, %d of %d nodes done, %d rejected\n",
					time.Since(start).Seconds(), total, ef.rounds*len(rows), done, len(rows), rejected)
			}
			next = next.Add(ef.progress)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every node had %d decided challenges within %v (raise -timeout)", ef.rounds, ef.timeout)
		case <-time.After(time.Second):
		}
	}
	return nil
}

// observe reads every row's node and fills its observed columns. It
// returns how many nodes are done (rounds decided challenges, or
// rejected), the decided challenges in all, and the rejected nodes.
func observe(ctx context.Context, rep truegpuv1.ReputationServiceClient, rows []evalRow, rounds int) (done, total, rejected int, err error) {
	for i := range rows {
		r := &rows[i]
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := rep.GetNode(cctx, &truegpuv1.GetNodeRequest{Address: r.Address})
		cancel()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("node %s (%s): %w", r.Address, evalPair{r.Actual, r.Claimed}.profile(), err)
		}
		fillObserved(r, resp.GetNode())
		total += min(r.Decided, rounds)
		if r.Status == "rejected" {
			rejected++
		}
		if r.Decided >= rounds || r.Status == "rejected" {
			done++
		}
	}
	return done, total, rejected, nil
}

// fillObserved sets a row's observed columns from its node's reputation.
func fillObserved(r *evalRow, n *truegpuv1.NodeReputation) {
	r.Status = statusWord(n.GetStatus())
	ct := n.GetCounters()
	r.Decided = int(ct.GetAccepted() + ct.GetRejected() + ct.GetMissed())
	r.Accepted = int(ct.GetAccepted())
	late := int(ct.GetRejected() + ct.GetMissed())
	r.Late = late
	flags := late
	for _, rs := range n.GetReasons() {
		if rs.GetCode() == string(reputation.ReasonCapacitySlow) {
			flags++
		}
	}
	r.FalseFlags = 0
	if r.honest() {
		r.FalseFlags = flags
	}
	if r.Status == "rejected" && r.ToReject == 0 {
		// The first reading that shows the rejection (nodes are read
		// every second): the challenges decided until then. Later
		// readings may count challenges that were already in flight.
		r.ToReject = r.Decided
	}
	switch {
	case r.Status == "rejected":
		r.Observed = expectCaught
	case late > 0:
		r.Observed = "late"
	default:
		r.Observed = expectPass
	}
	// A liar the model expects caught matches when it was rejected, or
	// when every decided challenge so far was late or missed (fewer
	// rounds than rejection takes).
	m := r.Observed == expectCaught || r.Observed == "late" && ct.GetAccepted() == 0
	if r.Expected != expectCaught {
		m = r.Observed == expectPass && r.FalseFlags == 0
	}
	r.Match = &m
}

func summarize(rows []evalRow, model bool) evalSummary {
	s := evalSummary{Pairs: len(rows)}
	for _, r := range rows {
		switch r.Expected {
		case expectCaught:
			s.ExpectedCaught++
		case expectEvidence:
			s.NeedsEvidence++
		}
		if model {
			continue
		}
		switch {
		case r.Expected != expectCaught:
			if r.Observed == expectCaught {
				s.Unexpected++
			}
		case r.Observed == expectCaught:
			s.Caught++
		case r.Observed == "late" && r.Accepted == 0:
			s.LateOnly++
		}
		if r.Match != nil && *r.Match {
			s.Matched++
		}
		s.HonestFlags += r.FalseFlags
	}
	return s
}

func printEvalTable(w io.Writer, rows []evalRow, model bool) error {
	header := []string{"ACTUAL", "CLAIMED", "MODEL_MS", "DEADLINE_MS", "SLACK_MS", "WALK_MS", "WALK_DEADLINE_MS", "THROUGHPUT", "EXPECTED"}
	if !model {
		header = append(header, "STATUS", "DECIDED", "TO_REJECT", "FALSE_FLAGS", "OBSERVED", "MATCH")
	}
	t := newTable(w, header...)
	for _, r := range rows {
		walk, walkDeadline := "-", "-"
		if r.memory {
			walk, walkDeadline = strconv.FormatUint(r.WalkMillis, 10), strconv.FormatUint(r.WalkDeadline, 10)
		}
		cells := []string{r.Actual, r.Claimed, strconv.FormatUint(r.ModelMillis, 10), strconv.FormatUint(r.DeadlineMillis, 10), slack(r), walk, walkDeadline, r.ThroughputRatio + "x", r.Expected}
		if !model {
			toReject, flags, match := "-", "-", "no"
			if r.ToReject > 0 {
				toReject = strconv.Itoa(r.ToReject)
			}
			if r.honest() {
				flags = strconv.Itoa(r.FalseFlags)
			}
			if r.Match != nil && *r.Match {
				match = "yes"
			}
			cells = append(cells, r.Status, strconv.Itoa(r.Decided), toReject, flags, r.Observed, match)
		}
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	s := summarize(rows, model)
	fmt.Fprintf(w, "\n%d pairs: %d expected caught, %d need bandwidth/capacity evidence the timed phase does not give", s.Pairs, s.ExpectedCaught, s.NeedsEvidence)
	if !model {
		fmt.Fprintf(w, ";\nof the %d expected caught, %d rejected and %d late or missed on every decided challenge (not yet rejected); %d other rows rejected;\n%d of %d rows match the expectation; %d honest false flags",
			s.ExpectedCaught, s.Caught, s.LateOnly, s.Unexpected, s.Matched, s.Pairs, s.HonestFlags)
	}
	fmt.Fprintln(w)
	return nil
}
