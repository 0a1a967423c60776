package oracle

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// ScheduleConfig configures challenge scheduling on the leader.
type ScheduleConfig struct {
	// Tick is how often the leader looks for due work. Default 1s.
	Tick time.Duration
	// Interval is the mean time between two challenges of one device; each
	// gap is drawn uniformly from [Interval/2, 3·Interval/2). Default 5m.
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
}

func (c *ScheduleConfig) ensureDefaults() {
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Minute
	}
	if c.ProofWindow <= 0 {
		c.ProofWindow = 10 * time.Minute
	}
	if c.StormInterval == 0 {
		c.StormInterval = 3 * c.Interval
	}
	if c.MaxPerTick <= 0 {
		c.MaxPerTick = 2000
	}
	if c.RandomStormSize == 0 {
		c.RandomStormSize = 256
	}
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

// scheduler is the leader's challenge issuer. Its bookkeeping (when each
// device is next due) is local and rebuilt at random after a leader change,
// which is itself unpredictable to nodes.
type scheduler struct {
	m         *Member
	cfg       ScheduleConfig
	next      map[deviceKey]time.Time
	lastStorm time.Time
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
	s := &scheduler{m: m, cfg: m.cfg.Schedule, next: map[deviceKey]time.Time{}, lastStorm: m.cfg.Now()}
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
// groups.
func (s *scheduler) tick(ctx context.Context) error {
	m := s.m
	now := m.cfg.Now()
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
	var nodes []*truegpuv1.NodeRecord
	if err := m.fsm.Nodes(func(r *truegpuv1.NodeRecord) bool { nodes = append(nodes, r); return true }); err != nil {
		return err
	}
	budget := s.cfg.MaxPerTick
	for _, rec := range nodes {
		if budget <= 0 {
			break
		}
		addr := ethcrypto.Address(rec.Address)
		var due []*truegpuv1.Device
		for _, d := range rec.Devices {
			k := deviceKey{addr, d.Index}
			at, ok := s.next[k]
			if !ok {
				at = now.Add(time.Duration(randUint64() % uint64(s.cfg.Interval)))
				s.next[k] = at
			}
			if !now.Before(at) {
				due = append(due, d)
			}
		}
		if len(due) == 0 {
			continue
		}
		busy, err := s.busyDevices(addr, rec)
		if err != nil {
			return err
		}
		var chs []*truegpuv1.IssuedChallenge
		for _, d := range due {
			k := deviceKey{addr, d.Index}
			if busy[d.Index] {
				continue
			}
			ch, err := s.challenge(addr, d, now, "")
			if err != nil {
				continue // unknown class: registration refuses those; skip
			}
			chs = append(chs, ch)
			s.next[k] = now.Add(jitter(s.cfg.Interval))
		}
		if len(chs) > 0 {
			budget -= len(chs)
			if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
				IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
				return fmt.Errorf("issue: %w", err)
			}
		}
	}
	if storm {
		s.lastStorm = now
		if err := s.storms(ctx, nodes, now); err != nil {
			return err
		}
		return s.randomStorm(ctx, nodes, now)
	}
	return nil
}

// randomStorm challenges RandomStormSize devices drawn uniformly from the
// whole fleet (with the leader's random source) at one instant, under one
// storm id, whatever their standing. Devices with an open challenge are
// skipped.
func (s *scheduler) randomStorm(ctx context.Context, nodes []*truegpuv1.NodeRecord, now time.Time) error {
	size := min(s.cfg.RandomStormSize, s.cfg.MaxPerTick)
	if size <= 0 {
		return nil
	}
	type pick struct {
		rec *truegpuv1.NodeRecord
		dev *truegpuv1.Device
	}
	var all []pick
	for _, r := range nodes {
		for _, d := range r.Devices {
			all = append(all, pick{r, d})
		}
	}
	n := min(size, len(all))
	for i := range n { // the first n of a uniform shuffle
		j := i + int(randUint64()%uint64(len(all)-i))
		all[i], all[j] = all[j], all[i]
	}
	var idb [8]byte
	rand.Read(idb[:])
	stormID := "storm-random-" + hex.EncodeToString(idb[:])
	busy := map[string]map[uint32]bool{}
	var chs []*truegpuv1.IssuedChallenge
	for _, p := range all[:n] {
		addr := ethcrypto.Address(p.rec.Address)
		b, ok := busy[string(p.rec.Address)]
		if !ok {
			var err error
			if b, err = s.busyDevices(addr, p.rec); err != nil {
				return err
			}
			busy[string(p.rec.Address)] = b
		}
		if b[p.dev.Index] {
			continue
		}
		if ch, err := s.challenge(addr, p.dev, now, stormID); err == nil {
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
	commit := issued + int64(class.Deadline(p.M, p.N, p.K))
	return &truegpuv1.IssuedChallenge{
		Id: id[:], Address: addr[:], DeviceIndex: d.Index, Nonce: nonce[:], Profile: p.ID(), ClaimedClass: class.Name,
		IssuedAtUnixMs: issued, CommitDeadlineUnixMs: commit, ProofDeadlineUnixMs: commit + s.cfg.ProofWindow.Milliseconds(),
		ExpectedLatencyMs: class.ExpectedLatencyMillis(p.M, p.N, p.K), StormId: storm,
	}, nil
}

// storms challenges every device of each suspected group at one instant:
// nodes that share a device identity, and suspect nodes of one claimed
// class. A single GPU answering for many nodes cannot meet all deadlines.
func (s *scheduler) storms(ctx context.Context, nodes []*truegpuv1.NodeRecord, now time.Time) error {
	byAddr := map[string]*truegpuv1.NodeRecord{}
	for _, r := range nodes {
		byAddr[ethcrypto.Address(r.Address).String()] = r
	}
	groups := map[string][]string{}
	for _, r := range nodes {
		self := ethcrypto.Address(r.Address).String()
		var st reputation.NodeState
		if err := st.UnmarshalBinary(r.Reputation); err == nil {
			// Undecided identity contests, with every node presenting
			// them: the storm is the evidence that decides them (each
			// holder's device challenged at the same instant).
			for _, cf := range st.Conflicts {
				if cf.Outcome != reputation.ConflictOpen {
					continue
				}
				k := "dup:" + cf.Identity
				for _, a := range cf.Nodes {
					groups[k] = append(groups[k], a.String())
				}
			}
		}
		if r.Status == truegpuv1.NodeStatus_NODE_STATUS_SUSPECT && len(r.Devices) > 0 {
			k := "class:" + r.Devices[0].ClaimedClass
			groups[k] = append(groups[k], self)
		}
	}
	for k, g := range groups {
		slices.Sort(g)
		groups[k] = slices.Compact(g)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var idb [8]byte
		rand.Read(idb[:])
		stormID := "storm-" + hex.EncodeToString(idb[:])
		var chs []*truegpuv1.IssuedChallenge
		for _, a := range groups[k] {
			rec := byAddr[a]
			if rec == nil {
				continue
			}
			addr := ethcrypto.Address(rec.Address)
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
		if _, err := s.m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
			return fmt.Errorf("storm %s: %w", stormID, err)
		}
		s.m.log.Info("storm issued", "storm", stormID, "group", k, "challenges", len(chs))
	}
	return nil
}
