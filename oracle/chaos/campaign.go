package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// Fault is a kind of fault a run injects.
type Fault string

// Fault kinds.
const (
	KillLeader        Fault = "kill-leader"          // SIGKILL the leader, restart it from disk
	KillFollower      Fault = "kill-follower"        // SIGKILL a follower, restart it from disk
	PauseLeader       Fault = "pause-leader"         // SIGSTOP the leader past the election timeout, SIGCONT
	PauseFollower     Fault = "pause-follower"       // SIGSTOP a follower, SIGCONT
	PartitionLeader   Fault = "partition-leader"     // the leader alone on one side
	PartitionFollower Fault = "partition-follower"   // a follower alone (a minority without the leader)
	PartitionOneWay   Fault = "partition-asymmetric" // the leader cannot dial anyone; everyone can dial it
	SlowNetwork       Fault = "latency-drops"        // latency and connection resets on every link
	ClockSkew         Fault = "clock-skew"           // the leader's clock ahead, behind, or drifting
	DiskErrors        Fault = "disk-errors"          // one member's Raft log writes fail (Pebble's errorfs)
	DiskFull          Fault = "disk-full"            // one member's file writes fail (a file size limit of 0)
	CrashRestore      Fault = "crash-restore"        // SIGKILL a follower in the middle of a snapshot restore
	Membership        Fault = "membership"           // add a member, then remove one (the leader or a follower)
	Mixed             Fault = "mixed"                // each episode draws one of the above
)

// Faults lists every single fault kind, in table order (new kinds go at
// the end: a campaign's run seeds depend on the kind's index).
var Faults = []Fault{KillLeader, KillFollower, PauseLeader, PauseFollower, PartitionLeader, PartitionFollower, PartitionOneWay, SlowNetwork,
	ClockSkew, DiskErrors, DiskFull, CrashRestore, Membership}

// ParseFault returns the fault named s.
func ParseFault(s string) (Fault, error) {
	for _, f := range append(Faults, Mixed) {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(Faults)+1)
	for _, f := range append(Faults, Mixed) {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("chaos: unknown fault %q (want one of %s)", s, strings.Join(names, ", "))
}

// RunConfig configures one run: a fresh cluster, a workload, Episodes
// faults of kind Fault, healing, and the checks.
type RunConfig struct {
	// Binary is the oracled executable (BuildOracled); required.
	Binary string
	// Dir is the run's scratch directory (created); required.
	Dir string
	// Seed decides every choice the harness makes (fault targets,
	// durations, latencies, drops, the clients' operations). Process
	// scheduling still varies between two runs of one seed.
	Seed uint64
	// Fault is the kind of the run's faults.
	Fault Fault
	// Episodes is the number of faults injected one after another.
	// Default 1.
	Episodes int
	// Sequence, when set, replaces Fault and Episodes: one episode of each
	// kind, in order.
	Sequence []Fault
	// Warmup runs the workload before the first fault. Default 3s.
	Warmup time.Duration
	// Hold is the shortest time a fault lasts; each lasts Hold plus up to
	// Hold more, drawn from the seed. Default 3s (past the 1s election
	// timeout).
	Hold time.Duration
	// Epoch and ChallengeInterval are the members' flags. Defaults 4s and
	// 2s.
	Epoch, ChallengeInterval time.Duration
	// CheckTimeout bounds the linearizability check. Default 1 minute.
	CheckTimeout time.Duration
	// Workload sizes the clients (Seed and ProvingKey are set by Run).
	Workload WorkloadConfig
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// RunResult is what one run found. A run passed when Err is nil and every
// list is empty, Linearizable is Ok and ReportsResumed is true.
type RunResult struct {
	Seed   uint64
	Faults []string // what was injected, in order
	// Ops are the register clients' operations; Acked the acknowledged
	// registrations, verdicts and report signatures.
	Ops, Acked int
	Verdicts   int64
	// Lost lists acknowledged items missing from a member's final state.
	Lost []string
	// Linearizability of the writes and linearizable reads.
	Linearizable LinearizabilityResult
	// StaleViolations lists stale reads of values no write produced.
	StaleViolations []string
	// Diverged is set when the members' final states differ.
	Diverged error
	// ReportsResumed: an epoch report completed after the last fault
	// healed.
	ReportsResumed bool
	// Panics lists panic or corruption lines of the members' logs.
	Panics []string
	// FailStops lists the crash lines of members under a disk fault that
	// name the fault's error: the fail-stop the fault should cause.
	FailStops []string
	// FaultViolations lists failures of the promises particular to a
	// fault kind: a member with a failing disk that kept running, no write
	// acknowledged while only a minority was faulty, a membership change
	// that did not take effect (docs/RELIABILITY.md).
	FaultViolations []string
	// AppliedIndex is the members' common final applied index.
	AppliedIndex uint64
	// ForcedStops counts members that did not exit within 20s of SIGTERM
	// at the end of the run and were killed (the run then restarts the
	// cluster and stops it again before reading the states).
	ForcedStops int
	// Err is a harness failure (the cluster did not start or recover).
	Err      error
	Duration time.Duration
}

// Passed reports whether the run found nothing wrong.
func (r *RunResult) Passed() bool {
	return r.Err == nil && len(r.Lost) == 0 && r.Linearizable.Result == porcupine.Ok &&
		len(r.StaleViolations) == 0 && r.Diverged == nil && r.ReportsResumed && len(r.Panics) == 0 && len(r.FaultViolations) == 0
}

// Problems returns one line per finding.
func (r *RunResult) Problems() []string {
	var p []string
	if r.Err != nil {
		p = append(p, "harness: "+r.Err.Error())
	}
	p = append(p, r.Lost...)
	if r.Linearizable.Result != porcupine.Ok {
		p = append(p, fmt.Sprintf("linearizability: %s over %d operations", r.Linearizable.Result, r.Linearizable.Ops))
	}
	p = append(p, r.StaleViolations...)
	if r.Diverged != nil {
		p = append(p, r.Diverged.Error())
	}
	if !r.ReportsResumed && r.Err == nil {
		p = append(p, "no epoch report completed after the faults healed")
	}
	p = append(p, r.Panics...)
	p = append(p, r.FaultViolations...)
	return p
}

// DevKeys returns the test profile's dev proving key and writes its
// verifying key to dir/test.vk for the members.
func DevKeys(dir string) (*prover.ProvingKey, string, error) {
	p, err := prover.ProfileByName("test")
	if err != nil {
		return nil, "", err
	}
	pk, vk, err := prover.UnsafeDevKeys(p, "")
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "test.vk")
	if err := os.WriteFile(path, vk.Encode(), 0o644); err != nil {
		return nil, "", err
	}
	return pk, path, nil
}

// Run performs one run. It kills every process it started before it
// returns, whatever happens.
func Run(ctx context.Context, cfg RunConfig) *RunResult {
	start := time.Now()
	res := &RunResult{Seed: cfg.Seed}
	res.Err = run(ctx, cfg, res)
	res.Duration = time.Since(start)
	return res
}

func (cfg *RunConfig) defaults() {
	if cfg.Episodes <= 0 {
		cfg.Episodes = 1
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 3 * time.Second
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 3 * time.Second
	}
	if cfg.Epoch <= 0 {
		cfg.Epoch = 4 * time.Second
	}
	if cfg.ChallengeInterval <= 0 {
		cfg.ChallengeInterval = 2 * time.Second
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
}

func run(ctx context.Context, cfg RunConfig, res *RunResult) error {
	cfg.defaults()
	t0 := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "chaos seed %d %6.1fs: %s\n", cfg.Seed, time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return err
	}
	pk, vkPath, err := DevKeys(cfg.Dir)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6661756c74))
	ccfg := ClusterConfig{Binary: cfg.Binary, Epoch: cfg.Epoch, ChallengeInterval: cfg.ChallengeInterval, VerifyingKey: vkPath, Seed: cfg.Seed}
	planned := cfg.Sequence
	if len(planned) == 0 {
		planned = []Fault{cfg.Fault}
	}
	for _, k := range planned {
		if k == Membership || k == Mixed {
			ccfg.Spares = 1
		}
		if k == CrashRestore || k == Mixed {
			ccfg.SnapshotEvery = SnapshotEvery
		}
	}
	// Ports are picked free and then bound by the members: another process
	// may take one in between. Then start again on other ports.
	var c *Cluster
	for attempt := 1; ; attempt++ {
		dir := cfg.Dir
		if attempt > 1 {
			dir = filepath.Join(cfg.Dir, fmt.Sprintf("start-%d", attempt))
		}
		ccfg.Dir = dir
		c, err = StartCluster(ctx, ccfg)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		logf("start attempt %d: a port was taken; starting on other ports", attempt)
	}
	defer c.Close()
	logf("cluster up")
	wcfg := cfg.Workload
	wcfg.Seed, wcfg.ProvingKey = cfg.Seed, pk
	w, err := StartWorkload(c, wcfg)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.Stop()
		}
	}()
	if !sleepCtx(ctx, cfg.Warmup) {
		return ctx.Err()
	}
	if len(cfg.Sequence) > 0 {
		cfg.Episodes = len(cfg.Sequence)
	}
	for e := range cfg.Episodes {
		kind := cfg.Fault
		if len(cfg.Sequence) > 0 {
			kind = cfg.Sequence[e]
		}
		if kind == Mixed {
			kind = Faults[rng.IntN(len(Faults))]
		}
		hold := cfg.Hold + time.Duration(rng.Int64N(int64(cfg.Hold)))
		desc, err := inject(ctx, c, w, res, rng, kind, hold)
		res.Faults = append(res.Faults, desc)
		logf("episode %d: %s", e+1, desc)
		if err != nil {
			return fmt.Errorf("episode %d (%s): %w", e+1, desc, err)
		}
		if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
			return fmt.Errorf("after episode %d (%s): %w", e+1, desc, err)
		}
		if !sleepCtx(ctx, time.Second) {
			return ctx.Err()
		}
	}
	// Reports must keep completing now that every member is back.
	before := lastComplete(ctx, c)
	deadline := time.Now().Add(4*cfg.Epoch + 30*time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if lastComplete(ctx, c) > before {
			res.ReportsResumed = true
			break
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	logf("reports resumed: %v", res.ReportsResumed)
	w.Stop()
	stopped = true
	applied, err := quiesce(ctx, c)
	if err != nil {
		return err
	}
	// Stop every member with SIGTERM. The state database of a member that
	// had to be killed may lack writes it had not synced (its Raft log
	// still has them), so then restart the cluster, let it catch up, and
	// stop it again.
	for attempt := 1; ; attempt++ {
		var forced []string
		for _, m := range c.Active() {
			f, err := c.Stop(m, 20*time.Second)
			if err != nil {
				return err
			}
			if f {
				forced = append(forced, m.ID)
			}
		}
		if len(forced) == 0 {
			break
		}
		res.ForcedStops += len(forced)
		logf("%v did not exit within 20s of SIGTERM (attempt %d); restarting the cluster to compare final states", forced, attempt)
		if attempt == 3 {
			return fmt.Errorf("chaos: %v did not exit within 20s of SIGTERM, %d times", forced, attempt)
		}
		c.Net.Heal()
		for _, m := range c.Active() {
			if err := c.Restart(m); err != nil {
				return err
			}
		}
		if err := c.WaitHealthy(ctx, 90*time.Second); err != nil {
			return fmt.Errorf("after restarting to stop again: %w", err)
		}
		if applied, err = quiesce(ctx, c); err != nil {
			return err
		}
	}
	res.AppliedIndex = applied
	ops := w.History.Ops()
	res.Ops = len(ops)
	// Checks over no reads would pass vacuously (say, if reads stopped
	// decoding values): require some of each kind.
	reads := map[OpKind]int{}
	for _, op := range ops {
		if op.Outcome == OK && op.Err == "" {
			reads[op.Kind]++
		}
	}
	if reads[OpReadLinear] == 0 || reads[OpReadStale] == 0 || reads[OpWrite] == 0 {
		return fmt.Errorf("chaos: the workload has %d acknowledged writes, %d linearizable and %d stale reads that returned a value; every kind is needed for the checks to mean anything",
			reads[OpWrite], reads[OpReadLinear], reads[OpReadStale])
	}
	if b, err := json.Marshal(ops); err == nil {
		os.WriteFile(filepath.Join(cfg.Dir, "history.json"), b, 0o600)
	}
	res.Acked = w.Acks.Count()
	res.Verdicts = w.Verdicts.Load()
	var states []*MemberState
	for _, m := range c.Active() {
		st, err := ReadState(m.ID, m.DataDir, w.Acks)
		if err != nil {
			return err
		}
		states = append(states, st)
	}
	res.Lost = CheckAcknowledged(w.Acks, states)
	var ids []string
	for _, m := range c.Active() {
		ids = append(ids, m.ID)
	}
	res.FaultViolations = append(res.FaultViolations, CheckMemberTable(states, ids)...)
	res.Diverged = CheckConverged(states)
	// The final states join the history as linearizable reads after
	// everything else.
	checked := append(ops, FinalReads(states, w.Keys, w.History.Now())...)
	res.Linearizable = CheckLinearizable(checked, cfg.CheckTimeout, filepath.Join(cfg.Dir, "linearizability.html"))
	res.StaleViolations = CheckStaleReads(ops)
	var logs []string
	var windows []LogWindow
	for _, m := range c.Members {
		if _, err := os.Stat(m.LogPath); err == nil {
			logs = append(logs, m.LogPath)
			windows = append(windows, m.Windows()...)
		}
	}
	if res.Panics, res.FailStops, err = ScanLogsWindows(windows, logs...); err != nil {
		return err
	}
	logf("ops %d, acknowledged %d, verdicts %d, lost %d, linearizable %s, applied %d", res.Ops, res.Acked, res.Verdicts, len(res.Lost), res.Linearizable.Result, res.AppliedIndex)
	return nil
}

// inject applies one fault for hold and heals it. It returns a
// description of what it did.
func inject(ctx context.Context, c *Cluster, w *Workload, res *RunResult, rng *rand.Rand, kind Fault, hold time.Duration) (string, error) {
	leader := c.Leader(ctx)
	if leader < 0 {
		if err := c.WaitLeader(ctx, 30*time.Second); err != nil {
			return string(kind), err
		}
		leader = c.Leader(ctx)
	}
	active := c.ActiveIndexes()
	var followers []int
	for _, i := range active {
		if i != leader {
			followers = append(followers, i)
		}
	}
	follower := followers[rng.IntN(len(followers))]
	target := leader
	if kind == KillFollower || kind == PauseFollower || kind == PartitionFollower {
		target = follower
	}
	m := c.Members[target]
	switch kind {
	case ClockSkew:
		return injectClockSkew(ctx, c, w, rng, m, hold)
	case DiskErrors, DiskFull:
		return injectDiskFault(ctx, c, w, res, rng, kind, leader, follower, hold)
	case CrashRestore:
		return injectCrashRestore(ctx, c, rng, c.Members[follower], hold)
	case Membership:
		return injectMembership(ctx, c, res, rng, leader, follower, hold)
	}
	desc := fmt.Sprintf("%s %s for %v", kind, m.ID, hold.Round(time.Millisecond))
	switch kind {
	case KillLeader, KillFollower:
		if err := c.Kill(m); err != nil {
			return desc, err
		}
		sleepCtx(ctx, hold)
		return desc, c.Restart(m)
	case PauseLeader, PauseFollower:
		if err := c.Pause(m); err != nil {
			return desc, err
		}
		sleepCtx(ctx, hold)
		return desc, c.Resume(m)
	case PartitionLeader, PartitionFollower:
		var rest []int
		for _, i := range active {
			if i != target {
				rest = append(rest, i)
			}
		}
		c.Net.Partition([]int{target}, rest)
	case PartitionOneWay:
		for _, i := range active {
			if i != target {
				c.Net.Block(target, i)
			}
		}
		desc = fmt.Sprintf("%s: %s cannot dial out for %v", kind, m.ID, hold.Round(time.Millisecond))
	case SlowNetwork:
		latency := time.Duration(5+rng.IntN(96)) * time.Millisecond
		drop := 0.002 + 0.02*rng.Float64()
		for _, i := range active {
			for _, j := range active {
				if i != j {
					c.Net.Slow(i, j, latency, drop)
				}
			}
		}
		desc = fmt.Sprintf("%s: %v latency, %.1f%% resets per chunk on every link for %v", kind, latency, 100*drop, hold.Round(time.Millisecond))
	default:
		return desc, fmt.Errorf("chaos: fault %q cannot be injected", kind)
	}
	sleepCtx(ctx, hold)
	c.Net.Heal()
	return desc, nil
}

// lastComplete returns the newest complete epoch any member reports.
func lastComplete(ctx context.Context, c *Cluster) uint64 {
	var best uint64
	for _, i := range c.ActiveIndexes() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cl, err := truegpuv1.NewAdminServiceClient(c.Conn(i)).GetCluster(cctx, &truegpuv1.GetClusterRequest{})
		cancel()
		if err == nil && cl.LastCompleteEpoch > best {
			best = cl.LastCompleteEpoch
		}
	}
	return best
}

// quiesce stops commits so that every member can be compared at one
// applied index: it cuts every link (no leader can commit without a
// quorum) and waits until the applied indexes stop moving. If they settle
// apart (a follower had not yet heard of the last commit), it heals for a
// moment and tries again.
func quiesce(ctx context.Context, c *Cluster) (uint64, error) {
	all := c.ActiveIndexes()
	var last []uint64
	for range 30 {
		for _, i := range all {
			for _, j := range all {
				if i != j {
					c.Net.Block(i, j)
				}
			}
		}
		var prev []uint64
		for range 20 {
			sleepCtx(ctx, 300*time.Millisecond)
			cur, err := appliedIndexes(ctx, c)
			if err != nil {
				return 0, err
			}
			if prev != nil && equalU64(prev, cur) {
				break
			}
			prev = cur
		}
		last = prev
		if allSame(prev) {
			return prev[0], nil
		}
		c.Net.Heal()
		sleepCtx(ctx, 200*time.Millisecond)
		if err := c.WaitLeader(ctx, 30*time.Second); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("chaos: members did not settle at one applied index (last %v)", last)
}

func appliedIndexes(ctx context.Context, c *Cluster) ([]uint64, error) {
	var out []uint64
	for _, i := range c.ActiveIndexes() {
		h, err := c.Health(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("chaos: health of %s: %w", c.Members[i].ID, err)
		}
		out = append(out, h.AppliedIndex)
	}
	return out, nil
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func allSame(a []uint64) bool {
	for _, v := range a {
		if v != a[0] {
			return false
		}
	}
	return len(a) > 0
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Row is one line of a campaign table: the runs of one fault kind.
type Row struct {
	Fault                                Fault
	Runs, Passed                         int
	Ops, Acked                           int
	Lost, LinViolations, StaleViolations int
	LinUndecided, ForcedStops            int
	Diverged, NoReports, Panics, Harness int
	// FaultChecks counts runs with FaultViolations.
	FaultChecks int
	FailedSeeds []uint64
}

// Campaign runs runsPerFault runs of each fault kind, round-robin over the
// kinds (so a campaign cut short by ctx or by until keeps its rows
// balanced), run i of the kind at index k with seed RunSeed(seed, k, i). It
// starts no run after until (zero: no limit). Up to parallel runs (at least
// one) go at once, each on its own cluster, ports and directory; they are
// started in the same order and keep the same seeds, so a run's result
// depends on its seed and on how busy the machine is, not on which runs
// shared it. Each run's result goes to onRun as it finishes (one call at a
// time); a passed run's directory is removed. With a journal, runs it holds
// are counted from it and not run again, and each finished run is recorded
// in it. Each row's failed seeds come out sorted.
func Campaign(ctx context.Context, base RunConfig, kinds []Fault, runsPerFault int, seed uint64, until time.Time, j *Journal, parallel int, onRun func(Fault, int, *RunResult)) ([]Row, error) {
	rows := make([]Row, len(kinds))
	for k, kind := range kinds {
		rows[k].Fault = kind
	}
	episodes := max(base.Episodes, 1)
	var (
		mu      sync.Mutex // guards rows, the journal and onRun
		wg      sync.WaitGroup
		slots   = make(chan struct{}, max(parallel, 1))
		failure error
	)
	finish := func() ([]Row, error) {
		wg.Wait()
		for k := range rows {
			slices.Sort(rows[k].FailedSeeds)
		}
		return rows, failure
	}
	for i := range runsPerFault {
		for k, kind := range kinds {
			if j != nil {
				mu.Lock()
				row, ok := j.Done(seed, episodes, kind, i)
				if ok {
					rows[k].merge(row)
				}
				mu.Unlock()
				if ok {
					continue
				}
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			mu.Lock()
			stop := failure != nil
			mu.Unlock()
			if ctx.Err() != nil {
				mu.Lock()
				failure = ctx.Err()
				mu.Unlock()
				return finish()
			}
			if stop || (!until.IsZero() && time.Now().After(until)) {
				<-slots
				return finish()
			}
			cfg := base
			cfg.Fault = kind
			cfg.Seed = RunSeed(seed, k, i)
			cfg.Dir = filepath.Join(base.Dir, fmt.Sprintf("%s-%d", kind, i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				r := runOne(ctx, cfg)
				if r.Passed() {
					os.RemoveAll(cfg.Dir)
				}
				mu.Lock()
				defer mu.Unlock()
				rows[k].add(r)
				if onRun != nil {
					onRun(kind, i, r)
				}
				// A run the interrupt cut short is not recorded: it runs again.
				if j != nil && ctx.Err() == nil {
					if err := j.Record(seed, episodes, kind, i, r); err != nil && failure == nil {
						failure = err
					}
				}
			}()
		}
	}
	return finish()
}

// runOne is Run; tests of the campaign's bookkeeping replace it.
var runOne = Run

// RunSeed is the seed of run i of the kind at index kind of a campaign
// with seed seed.
func RunSeed(seed uint64, kind, i int) uint64 {
	return seed*1_000_003 + uint64(kind)*10_007 + uint64(i)
}

func (row *Row) add(r *RunResult) {
	row.Runs++
	if r.Passed() {
		row.Passed++
	} else {
		row.FailedSeeds = append(row.FailedSeeds, r.Seed)
	}
	row.Ops += r.Ops
	row.ForcedStops += r.ForcedStops
	row.Acked += r.Acked
	row.Lost += len(r.Lost)
	switch {
	case r.Err != nil:
	case r.Linearizable.Result == porcupine.Illegal:
		row.LinViolations++
	case r.Linearizable.Result == porcupine.Unknown:
		row.LinUndecided++
	}
	row.StaleViolations += len(r.StaleViolations)
	if r.Diverged != nil {
		row.Diverged++
	}
	if r.Err == nil && !r.ReportsResumed {
		row.NoReports++
	}
	if len(r.Panics) > 0 {
		row.Panics++
	}
	if len(r.FaultViolations) > 0 {
		row.FaultChecks++
	}
	if r.Err != nil {
		row.Harness++
	}
}

// WriteTable writes rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| fault | runs | passed | operations | acknowledged | lost | linearizability violations | undecided (checker timed out) | stale-read violations | diverged | reports stalled | panics | fault-specific checks failed | harness errors | members killed after SIGTERM timed out |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var t Row
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", r.Fault, r.Runs, r.Passed, r.Ops, r.Acked, r.Lost, r.LinViolations, r.LinUndecided, r.StaleViolations, r.Diverged, r.NoReports, r.Panics, r.FaultChecks, r.Harness, r.ForcedStops)
		t.merge(r)
	}
	fmt.Fprintf(w, "| **all** | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", t.Runs, t.Passed, t.Ops, t.Acked, t.Lost, t.LinViolations, t.LinUndecided, t.StaleViolations, t.Diverged, t.NoReports, t.Panics, t.FaultChecks, t.Harness, t.ForcedStops)
	var failed []string
	for _, r := range rows {
		for _, s := range r.FailedSeeds {
			failed = append(failed, fmt.Sprintf("%s:%d", r.Fault, s))
		}
	}
	sort.Strings(failed)
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nfailed runs (fault:seed): %s\n", strings.Join(failed, " "))
	}
}

// Logger returns a slog logger writing text to w at level warn, for the
// attestors of a run.
func Logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
