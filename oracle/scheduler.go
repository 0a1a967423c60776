package oracle

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
	"slices"
	"strings"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

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

// StandInTimed is the timed phase nodes compute on a TimedStandIn cluster.
var StandInTimed = timed.Spec{M: 32, N: 256, K: 2048}

// StandInMemory is the memory phase nodes compute on a TimedStandIn
// cluster: a 64 KB table and 32 lanes of 32 steps.
var StandInMemory = memwalk.Spec{Blocks: 64, Lanes: 32, Steps: 32}

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

// randUint64 draws from the leader's operating-system random source. The
// leader's randomness reaches the state only inside commands, so replicas
// agree on it; nobody can predict it before the command is issued.
func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(randUint64()%uint64(d))
}

type deviceKey struct {
	addr ethcrypto.Address
	dev  uint32
}

// dueEntry is a device's next due time in the scheduler's heap.
type dueEntry struct {
	at  time.Time
	k   deviceKey
	gen uint64 // the device's generation when pushed (scheduler.gens)
}

type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// scheduler is the leader's challenge issuer. Its bookkeeping (when each
// device is next due) is local and rebuilt at random after a leader change,
// which is itself unpredictable to nodes.
//
// A tick costs what is due, not what is registered: the devices are kept in
// memory (a list for uniform draws and a heap of due times), learned once
// from the state's in-memory device counts when the member starts leading
// and then from the state's log of device-count changes
// (fsm.DeviceChanges); a tick reads only the records of nodes with a due
// device or in a storm. The storm groups (undecided identity contests,
// suspect nodes by claimed class) are learned from the records the
// scheduler reads anyway: every device is read at least once per interval.
type scheduler struct {
	m         *Member
	cfg       ScheduleConfig
	lastStorm time.Time

	synced bool
	cursor uint64
	counts map[ethcrypto.Address]uint32
	devs   []deviceKey       // every registered device, for uniform draws
	pos    map[deviceKey]int // index in devs
	gens   map[deviceKey]uint64
	gen    uint64
	due    dueHeap

	// Storm groups, from the records read.
	contests     map[string][]ethcrypto.Address // identity -> its holders
	nodeContests map[ethcrypto.Address][]string
	suspects     map[string]map[ethcrypto.Address]bool // claimed class -> suspect nodes
	nodeSuspect  map[ethcrypto.Address]string

	// reads counts the node records read (tests check that a tick reads
	// what is due, not the fleet).
	reads int
}

// node reads one node record.
func (s *scheduler) node(addr ethcrypto.Address) (*truegpuv1.NodeRecord, error) {
	s.reads++
	return s.m.fsm.Node(addr)
}

// maxChangesPerTick bounds the registrations a tick takes in; the rest wait
// for the next tick.
const maxChangesPerTick = 1 << 15

// issueChunk is the most challenges one issue command carries.
const issueChunk = 256

// sync brings the device list up to date with the state.
func (s *scheduler) sync(now time.Time) {
	if s.counts == nil || !s.synced {
		s.counts = map[ethcrypto.Address]uint32{}
		s.devs = nil
		s.pos = map[deviceKey]int{}
		s.gens = map[deviceKey]uint64{}
		s.due = nil
		all, cursor := s.m.fsm.DeviceCounts()
		for _, c := range all {
			s.setCount(c.Address, c.Devices, now)
		}
		s.cursor, s.synced = cursor, true
	}
	if s.contests == nil {
		s.contests = map[string][]ethcrypto.Address{}
		s.nodeContests = map[ethcrypto.Address][]string{}
		s.suspects = map[string]map[ethcrypto.Address]bool{}
		s.nodeSuspect = map[ethcrypto.Address]string{}
	}
	for taken := 0; taken < maxChangesPerTick; {
		changes, next, ok := s.m.fsm.DeviceChanges(s.cursor, 4096)
		if !ok {
			s.synced = false
			s.sync(now)
			return
		}
		for _, c := range changes {
			s.setCount(c.Address, c.Devices, now)
		}
		s.cursor = next
		taken += len(changes)
		if len(changes) < 4096 {
			return
		}
	}
}

// setCount records that addr has n devices: new devices become due at a
// random time within one interval, removed ones leave the list (their heap
// entries are dropped when they come up).
func (s *scheduler) setCount(addr ethcrypto.Address, n uint32, now time.Time) {
	old := s.counts[addr]
	for i := old; i < n; i++ {
		k := deviceKey{addr, i}
		s.pos[k] = len(s.devs)
		s.devs = append(s.devs, k)
		// A device removed and added again gets a new generation, so
		// the heap entry it left behind is dropped, not doubled.
		s.gen++
		s.gens[k] = s.gen
		heap.Push(&s.due, dueEntry{now.Add(time.Duration(randUint64() % uint64(s.cfg.Interval))), k, s.gen})
	}
	for i := n; i < old; i++ {
		k := deviceKey{addr, i}
		p := s.pos[k]
		last := s.devs[len(s.devs)-1]
		s.devs[p] = last
		s.pos[last] = p
		s.devs = s.devs[:len(s.devs)-1]
		delete(s.pos, k)
		delete(s.gens, k)
	}
	if n == 0 {
		delete(s.counts, addr)
		s.observeGone(addr)
		return
	}
	s.counts[addr] = n
}

// observe updates the storm groups from a node record just read.
func (s *scheduler) observe(rec *truegpuv1.NodeRecord) {
	addr := ethcrypto.Address(rec.Address)
	s.observeGone(addr)
	var st reputation.NodeState
	if err := st.UnmarshalBinary(rec.Reputation); err == nil {
		// Undecided identity contests, with every node presenting them:
		// the storm is the evidence that decides them (each holder's
		// device challenged at the same instant).
		for _, cf := range st.Conflicts {
			if cf.Outcome != reputation.ConflictOpen {
				continue
			}
			s.contests[cf.Identity] = slices.Clone(cf.Nodes)
			s.nodeContests[addr] = append(s.nodeContests[addr], cf.Identity)
		}
	}
	if rec.Status == truegpuv1.NodeStatus_NODE_STATUS_SUSPECT && len(rec.Devices) > 0 {
		class := rec.Devices[0].ClaimedClass
		if s.suspects[class] == nil {
			s.suspects[class] = map[ethcrypto.Address]bool{}
		}
		s.suspects[class][addr] = true
		s.nodeSuspect[addr] = class
	}
}

// observeGone forgets what the groups hold about addr.
func (s *scheduler) observeGone(addr ethcrypto.Address) {
	for _, id := range s.nodeContests[addr] {
		delete(s.contests, id) // relearned from any holder still in it
	}
	delete(s.nodeContests, addr)
	if class, ok := s.nodeSuspect[addr]; ok {
		delete(s.suspects[class], addr)
		if len(s.suspects[class]) == 0 {
			delete(s.suspects, class)
		}
		delete(s.nodeSuspect, addr)
	}
}

// leaderLoop runs the leader-only work while this member leads.
func (m *Member) leaderLoop(ctx context.Context) {
	var cancel context.CancelFunc
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if cancel != nil {
				cancel()
			}
			return
		case <-t.C:
		}
		leading := m.IsLeader()
		switch {
		case leading && cancel == nil:
			var lctx context.Context
			lctx, cancel = context.WithCancel(ctx)
			m.log.Info("leadership gained; starting scheduler and epoch closer")
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.lead(lctx)
			}()
		case !leading && cancel != nil:
			m.log.Info("leadership lost")
			cancel()
			cancel = nil
		}
	}
}

func (m *Member) lead(ctx context.Context) {
	// Apply everything committed by earlier leaders before deciding.
	if err := m.raft.Barrier(10 * time.Second).Error(); err != nil {
		m.log.Warn("leader barrier failed", "err", err)
		return
	}
	s := &scheduler{m: m, cfg: m.cfg.Schedule, lastStorm: m.cfg.Now()}
	since := m.cfg.Now()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("scheduler", "err", err)
		}
		if err := m.maybeCloseEpoch(ctx, since); err != nil && ctx.Err() == nil {
			m.log.Warn("epoch close", "err", err)
		}
	}
}

func (m *Member) maybeCloseEpoch(ctx context.Context, since time.Time) error {
	meta, err := m.fsm.Meta()
	if err != nil {
		return err
	}
	if meta.Shadow != m.cfg.Shadow {
		// The cluster's mode follows the leader's configuration; the
		// epochs closed from now on are closed in it.
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: m.cfg.Now().UnixMilli(), Body: &truegpuv1.Command_SetShadowMode{
			SetShadowMode: &truegpuv1.SetShadowModeCommand{Shadow: m.cfg.Shadow}}}); err != nil {
			return fmt.Errorf("set shadow mode %v: %w", m.cfg.Shadow, err)
		}
		m.log.Warn("epoch reports' mode switched to this member's", "shadow", m.cfg.Shadow, "open_epoch", meta.CurrentEpoch)
		if meta, err = m.fsm.Meta(); err != nil {
			return err
		}
	}
	opened := time.UnixMilli(meta.EpochOpenedAtUnixMs)
	if opened.Before(since) {
		opened = since
	}
	now := m.cfg.Now()
	if now.Sub(opened) < m.cfg.EpochInterval {
		return nil
	}
	_, err = m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: meta.CurrentEpoch}}})
	return err
}

// tick expires overdue challenges, issues due ones and storms suspected
// groups. Its reads are the due devices' node records, the storms' and
// bounded lists of due challenges and registration changes.
func (s *scheduler) tick(ctx context.Context) error {
	m := s.m
	now := m.cfg.Now()
	s.sync(now)
	due, err := m.fsm.DueChallenges(now.UnixMilli(), 4096)
	if err != nil {
		return err
	}
	if len(due) > 0 {
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_ExpireChallenges{
			ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: due}}}); err != nil {
			return fmt.Errorf("expire: %w", err)
		}
	}
	storm := s.cfg.StormInterval > 0 && now.Sub(s.lastStorm) >= s.cfg.StormInterval
	// Take the due devices, at most MaxPerTick, grouped by node.
	byNode := map[ethcrypto.Address][]uint32{}
	var order []ethcrypto.Address
	for n := 0; n < s.cfg.MaxPerTick && len(s.due) > 0 && !s.due[0].at.After(now); n++ {
		e := heap.Pop(&s.due).(dueEntry)
		if g, ok := s.gens[e.k]; !ok || g != e.gen {
			continue // removed since (and perhaps added again)
		}
		if _, ok := byNode[e.k.addr]; !ok {
			order = append(order, e.k.addr)
		}
		byNode[e.k.addr] = append(byNode[e.k.addr], e.k.dev)
	}
	var chs []*truegpuv1.IssuedChallenge
	for i, addr := range order {
		rec, err := s.node(addr)
		if err != nil {
			// Not readable yet (its registration's batch is being
			// committed) or a read error: try these again next tick.
			for _, a := range order[i:] {
				for _, d := range byNode[a] {
					k := deviceKey{a, d}
					heap.Push(&s.due, dueEntry{now.Add(s.cfg.Tick), k, s.gens[k]})
				}
			}
			if errors.Is(err, fsm.ErrNotFound) {
				break
			}
			return err
		}
		s.observe(rec)
		busy, err := s.busyDevices(addr, rec)
		if err != nil {
			return err
		}
		for _, idx := range byNode[addr] {
			k := deviceKey{addr, idx}
			if int(idx) >= len(rec.Devices) {
				continue // the node re-registered with fewer devices
			}
			if busy[idx] {
				// Look again once its open challenge has likely closed.
				heap.Push(&s.due, dueEntry{now.Add(jitter(s.cfg.Interval) / 2), k, s.gens[k]})
				continue
			}
			ch, err := s.challenge(addr, rec.Devices[idx], now, "")
			if err != nil {
				continue // unknown class: registration refuses those; skip
			}
			chs = append(chs, ch)
			heap.Push(&s.due, dueEntry{now.Add(jitter(s.cfg.Interval)), k, s.gens[k]})
		}
	}
	for len(chs) > 0 {
		n := min(len(chs), issueChunk)
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs[:n]}}}); err != nil {
			return fmt.Errorf("issue: %w", err)
		}
		chs = chs[n:]
	}
	if storm {
		s.lastStorm = now
		if err := s.storms(ctx, now); err != nil {
			return err
		}
		return s.randomStorm(ctx, now)
	}
	return nil
}

// randomStorm challenges RandomStormSize devices drawn uniformly from the
// whole fleet (with the leader's random source) at one instant, under one
// storm id, whatever their standing. Devices with an open challenge are
// skipped. It reads the records of the drawn devices' nodes only.
func (s *scheduler) randomStorm(ctx context.Context, now time.Time) error {
	s.sync(now)
	size := min(s.cfg.RandomStormSize, s.cfg.MaxPerTick)
	if size <= 0 || len(s.devs) == 0 {
		return nil
	}
	n := min(size, len(s.devs))
	// n distinct positions, uniformly: a partial shuffle of the positions,
	// with only the swapped ones kept in a map.
	swapped := map[int]int{}
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	picks := make([]deviceKey, 0, n)
	for i := range n {
		j := i + int(randUint64()%uint64(len(s.devs)-i))
		vi, vj := at(i), at(j)
		swapped[i], swapped[j] = vj, vi
		picks = append(picks, s.devs[vj])
	}
	var idb [8]byte
	rand.Read(idb[:])
	stormID := "storm-random-" + hex.EncodeToString(idb[:])
	type nodeInfo struct {
		rec  *truegpuv1.NodeRecord
		busy map[uint32]bool
	}
	nodes := map[ethcrypto.Address]*nodeInfo{}
	var chs []*truegpuv1.IssuedChallenge
	for _, p := range picks {
		ni, ok := nodes[p.addr]
		if !ok {
			rec, err := s.node(p.addr)
			if errors.Is(err, fsm.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			s.observe(rec)
			busy, err := s.busyDevices(p.addr, rec)
			if err != nil {
				return err
			}
			ni = &nodeInfo{rec, busy}
			nodes[p.addr] = ni
		}
		if int(p.dev) >= len(ni.rec.Devices) || ni.busy[p.dev] {
			continue
		}
		if ch, err := s.challenge(p.addr, ni.rec.Devices[p.dev], now, stormID); err == nil {
			chs = append(chs, ch)
		}
	}
	if len(chs) < 2 {
		return nil
	}
	if _, err := s.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
		IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
		return fmt.Errorf("storm %s: %w", stormID, err)
	}
	s.m.log.Info("storm issued", "storm", stormID, "group", "random", "challenges", len(chs))
	return nil
}

func (s *scheduler) busyDevices(addr ethcrypto.Address, rec *truegpuv1.NodeRecord) (map[uint32]bool, error) {
	busy := map[uint32]bool{}
	css, err := s.m.fsm.OpenChallenges(addr)
	if err != nil {
		return nil, err
	}
	for _, cs := range css {
		busy[cs.Challenge.DeviceIndex] = true
	}
	return busy, nil
}

// challenge builds one challenge sized for the device's claimed class.
func (s *scheduler) challenge(addr ethcrypto.Address, d *truegpuv1.Device, now time.Time, storm string) (*truegpuv1.IssuedChallenge, error) {
	p := s.m.cfg.Profile
	class, err := gpuclass.Lookup(d.ClaimedClass)
	if err != nil {
		return nil, err
	}
	var nonce [32]byte
	rand.Read(nonce[:])
	issued := now.UnixMilli()
	id := truegpuv1.ChallengeID(nonce[:], addr[:], d.Index, issued)
	deadline, expected := class.Deadline(p.M, p.N, p.K), class.ExpectedLatencyMillis(p.M, p.N, p.K)
	tp, mp := s.timedParams(class), s.memoryParams(class)
	if tp != nil || mp != nil {
		// The commitment binds the profile workload, the timed GEMM and
		// the memory phase's table: their device times add up.
		work := class.ExpectedMillis(p.M, p.N, p.K) + tp.GetExpectedMs() + mp.GetFillExpectedMs()
		deadline, expected = gpuclass.TimedDeadline(work), gpuclass.TimedExpectedLatency(work)
	}
	commit := issued + int64(deadline)
	proof := commit + s.cfg.ProofWindow.Milliseconds()
	if mp != nil {
		// The walk may start as late as the commitment deadline.
		proof += int64(mp.WalkDeadlineMs)
	}
	return &truegpuv1.IssuedChallenge{
		Id: id[:], Address: addr[:], DeviceIndex: d.Index, Nonce: nonce[:], Profile: p.ID(), ClaimedClass: class.Name,
		IssuedAtUnixMs: issued, CommitDeadlineUnixMs: commit, ProofDeadlineUnixMs: proof,
		ExpectedLatencyMs: expected, StormId: storm, Timed: tp, Memory: mp,
	}, nil
}

// memoryParams sizes the memory phase for a claimed class, or returns nil
// when the cluster runs none. The walk deadline is the timed phase's rule
// (gpuclass.TimedDeadline) applied to the walk's expected device time; it
// runs from the leader recording the commitment, so the walk's start is
// on the oracle's clock.
func (s *scheduler) memoryParams(class gpuclass.Class) *truegpuv1.MemoryParams {
	if s.cfg.MemoryTargetMillis == 0 {
		return nil
	}
	blocks, lanes, steps := class.WalkDims(s.cfg.MemoryTargetMillis)
	walk := class.WalkExpectedMillis(blocks, lanes, steps)
	mp := &truegpuv1.MemoryParams{Blocks: blocks, Lanes: lanes, Steps: steps, ModelBlocks: blocks, ModelLanes: lanes, ModelSteps: steps,
		FillExpectedMs: class.FillExpectedMillis(blocks), WalkExpectedMs: walk, WalkDeadlineMs: gpuclass.TimedDeadline(walk)}
	if s.cfg.TimedStandIn {
		mp.Blocks, mp.Lanes, mp.Steps = StandInMemory.Blocks, StandInMemory.Lanes, StandInMemory.Steps
	}
	return mp
}

// timedParams sizes the timed phase for a claimed class, or returns nil
// when the cluster runs none.
func (s *scheduler) timedParams(class gpuclass.Class) *truegpuv1.TimedParams {
	if s.cfg.TimedTargetMillis == 0 {
		return nil
	}
	m, n, k := class.TimedDims(s.cfg.TimedTargetMillis)
	tp := &truegpuv1.TimedParams{M: m, N: n, K: k, ModelM: m, ModelN: n, ModelK: k, ExpectedMs: class.TimedExpectedMillis(m, n, k)}
	if s.cfg.TimedStandIn {
		tp.M, tp.N, tp.K = StandInTimed.M, StandInTimed.N, StandInTimed.K
	}
	return tp
}

// storms challenges every device of each suspected group at one instant:
// nodes that share a device identity (an undecided contest), and suspect
// nodes of one claimed class. A single GPU answering for many nodes cannot
// meet all deadlines. The groups come from the records the scheduler has
// read (observe); each member's record is read again here, and a node that
// has left its group since is left out.
func (s *scheduler) storms(ctx context.Context, now time.Time) error {
	s.sync(now)
	groups := map[string][]ethcrypto.Address{}
	for id, nodes := range s.contests {
		groups["dup:"+id] = slices.Clone(nodes)
	}
	for class, set := range s.suspects {
		for a := range set {
			groups["class:"+class] = append(groups["class:"+class], a)
		}
	}
	keys := make([]string, 0, len(groups))
	for k, g := range groups {
		slices.SortFunc(g, func(a, b ethcrypto.Address) int { return bytes.Compare(a[:], b[:]) })
		groups[k] = slices.Compact(g)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	budget := s.cfg.MaxPerTick
	for _, k := range keys {
		if budget <= 0 {
			break
		}
		var idb [8]byte
		rand.Read(idb[:])
		stormID := "storm-" + hex.EncodeToString(idb[:])
		var chs []*truegpuv1.IssuedChallenge
		for _, addr := range groups[k] {
			rec, err := s.node(addr)
			if errors.Is(err, fsm.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			s.observe(rec)
			if !inGroup(k, rec) {
				continue
			}
			busy, err := s.busyDevices(addr, rec)
			if err != nil {
				return err
			}
			for _, d := range rec.Devices {
				if busy[d.Index] {
					continue
				}
				if ch, err := s.challenge(addr, d, now, stormID); err == nil {
					chs = append(chs, ch)
				}
			}
		}
		if len(chs) < 2 {
			continue
		}
		budget -= len(chs)
		if _, err := s.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
			return fmt.Errorf("storm %s: %w", stormID, err)
		}
		s.m.log.Info("storm issued", "storm", stormID, "group", k, "challenges", len(chs))
	}
	return nil
}

// inGroup reports whether rec still belongs to storm group k.
func inGroup(k string, rec *truegpuv1.NodeRecord) bool {
	if id, ok := strings.CutPrefix(k, "dup:"); ok {
		var st reputation.NodeState
		if err := st.UnmarshalBinary(rec.Reputation); err != nil {
			return false
		}
		for _, cf := range st.Conflicts {
			if cf.Identity == id && cf.Outcome == reputation.ConflictOpen {
				return true
			}
		}
		return false
	}
	class, _ := strings.CutPrefix(k, "class:")
	return rec.Status == truegpuv1.NodeStatus_NODE_STATUS_SUSPECT && len(rec.Devices) > 0 && rec.Devices[0].ClaimedClass == class
}
