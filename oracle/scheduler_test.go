package oracle

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/internal/testwait"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestStormDuplicateIdentity: nodes presenting one device identity are
// challenged together, at one instant, under one storm id.
func TestStormDuplicateIdentity(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Now = clock.Now })
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	var nodes []*testNode
	for i := range 3 {
		n := newTestNode(20 + i)
		n.dev.Fingerprint.Uuid = "GPU-cloned"
		nodes = append(nodes, n)
		if _, err := m.pipeline.Register(ctx, n.registerReq(clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	honest := newTestNode(30)
	if _, err := m.pipeline.Register(ctx, honest.registerReq(clock.Now())); err != nil {
		t.Fatal(err)
	}
	var recs []*truegpuv1.NodeRecord
	if err := m.fsm.Nodes(func(r *truegpuv1.NodeRecord) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatal(err)
	}
	s := newScheduler(m)
	s.sync(clock.Now())
	for _, r := range recs { // as the ticks read them when their devices are due
		s.observe(r)
	}
	if err := s.storms(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	storm := ""
	for _, n := range nodes {
		open, err := m.fsm.OpenChallenges(n.key.Address())
		if err != nil || len(open) != 1 {
			t.Fatalf("%s: %d open challenges, %v", n.addr(), len(open), err)
		}
		ch := open[0].Challenge
		if ch.StormId == "" || (storm != "" && ch.StormId != storm) || ch.IssuedAtUnixMs != clock.Now().UnixMilli() {
			t.Fatalf("challenge %v not in one storm", ch)
		}
		storm = ch.StormId
	}
	if open, _ := m.fsm.OpenChallenges(honest.key.Address()); len(open) != 0 {
		t.Fatal("a node outside the group was stormed")
	}
}

// TestRandomStorm: a random storm challenges RandomStormSize devices drawn
// from the whole fleet, nodes with nothing in common, at one instant under
// one storm id; with a size above the fleet it challenges every device.
func TestRandomStorm(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Now = clock.Now })
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	var nodes []*testNode
	for i := range 6 {
		n := newTestNode(40 + i)
		nodes = append(nodes, n)
		if _, err := m.pipeline.Register(ctx, n.registerReq(clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	stormed := func() (n int, ids map[string]bool) {
		ids = map[string]bool{}
		for _, node := range nodes {
			open, err := m.fsm.OpenChallenges(node.key.Address())
			if err != nil {
				t.Fatal(err)
			}
			for _, cs := range open {
				if cs.Challenge.IssuedAtUnixMs != clock.Now().UnixMilli() {
					t.Fatalf("stormed challenge issued at %d, not at the storm instant %d", cs.Challenge.IssuedAtUnixMs, clock.Now().UnixMilli())
				}
				ids[cs.Challenge.StormId] = true
				n++
			}
		}
		return n, ids
	}
	cfg := m.cfg.Schedule
	cfg.RandomStormSize = 4
	s := newScheduler(m)
	s.cfg = cfg
	if err := s.randomStorm(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, ids := stormed(); n != 4 || len(ids) != 1 || ids[""] {
		t.Fatalf("random storm of 4: %d challenges under storm ids %v", n, ids)
	}
	// The stormed devices are busy; a storm larger than the fleet reaches
	// every other device.
	clock.Advance(time.Second)
	s.cfg.RandomStormSize = 100
	if err := s.randomStorm(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	open := func() int {
		total := 0
		for _, node := range nodes {
			o, err := m.fsm.OpenChallenges(node.key.Address())
			if err != nil || len(o) != 1 {
				t.Fatalf("%s has %d open challenges after the storms (%v), want 1", node.addr(), len(o), err)
			}
			total += len(o)
		}
		return total
	}
	if got := open(); got != len(nodes) {
		t.Fatalf("%d of %d nodes stormed", got, len(nodes))
	}
}

// TestScheduleIssuesFromClaimedClass: the scheduler issues each device a
// challenge with a nonce and deadlines from its claimed class.
func TestScheduleIssuesFromClaimedClass(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Now = clock.Now; cfg.Schedule.Interval = time.Second })
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	fast, slow := newTestNode(1), newTestNode(2)
	slow.dev.ClaimedClass = "cpu"
	for _, n := range []*testNode{fast, slow} {
		if _, err := m.pipeline.Register(ctx, n.registerReq(clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	s := newScheduler(m)
	s.lastStorm = clock.Now()
	if err := s.tick(ctx); err != nil { // learns due times
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(a ethcrypto.Address) *truegpuv1.IssuedChallenge {
		open, err := m.fsm.OpenChallenges(a)
		if err != nil || len(open) != 1 {
			t.Fatalf("%s: %d open, %v", a, len(open), err)
		}
		return open[0].Challenge
	}
	f, sl := get(fast.key.Address()), get(slow.key.Address())
	if string(f.Nonce) == string(sl.Nonce) || len(f.Nonce) != 32 {
		t.Fatal("nonces not fresh")
	}
	if f.CommitDeadlineUnixMs-f.IssuedAtUnixMs >= sl.CommitDeadlineUnixMs-sl.IssuedAtUnixMs {
		t.Fatalf("H100 deadline %d ms not shorter than cpu deadline %d ms", f.CommitDeadlineUnixMs-f.IssuedAtUnixMs, sl.CommitDeadlineUnixMs-sl.IssuedAtUnixMs)
	}
	// A device with an open challenge gets no second one.
	clock.Advance(2 * time.Second)
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	get(fast.key.Address())
}

// TestTickReadsOnlyDueNodes: a tick reads the records of nodes with a due
// device, not the fleet: with nothing due it reads none, and a registration
// reaches the scheduler through the state's change log, not a scan.
func TestTickReadsOnlyDueNodes(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Now = clock.Now
		cfg.Schedule.Interval = time.Hour
		cfg.Schedule.StormInterval = -1
	})
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	const fleet = 40
	var nodes []*testNode
	for i := range fleet {
		n := newTestNode(100 + i)
		nodes = append(nodes, n)
		if _, err := m.pipeline.Register(ctx, n.registerReq(clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	s := newScheduler(m)
	s.lastStorm = clock.Now()
	s.sync(clock.Now())
	if len(s.devs) != fleet {
		t.Fatalf("scheduler knows %d devices, want %d", len(s.devs), fleet)
	}
	// Make exactly three devices due now and the rest an interval away.
	s.due = nil
	for i, k := range s.devs {
		at := clock.Now().Add(time.Hour)
		if i < 3 {
			at = clock.Now()
		}
		heap.Push(&s.due, dueEntry{at, k, s.gens[k]})
	}
	s.reads = 0
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if s.reads != 3 {
		t.Fatalf("a tick with 3 due devices in a fleet of %d read %d node records", fleet, s.reads)
	}
	s.reads = 0
	if err := s.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if s.reads != 0 {
		t.Fatalf("a tick with nothing due read %d node records", s.reads)
	}
	// A new registration arrives through the change log.
	late := newTestNode(999)
	if _, err := m.pipeline.Register(ctx, late.registerReq(clock.Now())); err != nil {
		t.Fatal(err)
	}
	s.sync(clock.Now())
	if _, ok := s.pos[deviceKey{late.key.Address(), 0}]; !ok || len(s.devs) != fleet+1 {
		t.Fatalf("the new node's device is not scheduled (%d devices)", len(s.devs))
	}
}

// TestMemberChallengeInterval: a running member's scheduler follows
// Schedule.Interval. With a 200 ms interval a node that never answers is
// challenged again each time its challenge expires, so it collects three
// challenges long before the default 5-minute interval would have issued
// its second.
func TestMemberChallengeInterval(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Schedule = ScheduleConfig{Tick: 20 * time.Millisecond, Interval: 200 * time.Millisecond, StormInterval: -1, RandomStormSize: -1}
	})
	m := c.leader(5 * time.Second)
	if m.cfg.Schedule.Interval != 200*time.Millisecond {
		t.Fatalf("member runs with interval %v, want the configured 200ms", m.cfg.Schedule.Interval)
	}
	n := newTestNode(7)
	if _, err := m.pipeline.Register(context.Background(), n.registerReq(time.Now())); err != nil {
		t.Fatal(err)
	}
	const want = 3
	var hist []*truegpuv1.ChallengeRecord
	testwait.UntilNil(t, 90*time.Second, func() error {
		var err error
		if hist, _, err = m.fsm.ChallengeHistory(n.key.Address(), 100); err != nil {
			t.Fatal(err)
		}
		if len(hist) < want {
			return fmt.Errorf("challenged %d times", len(hist))
		}
		return nil
	}, "node not challenged %d times", want)
	for _, r := range hist {
		if r.StormId != "" {
			t.Fatalf("challenge %s came from a storm (storms are off): %v", r.ChallengeId, r)
		}
	}
}

// TestSchedulerWithoutRaft drives ticks through the scheduler's seams: a
// tick expires what the state says is overdue before it issues, takes due
// devices earliest first (at most MaxPerTick), skips a device with an open
// challenge, and issues challenges sized from the claimed class.
func TestSchedulerWithoutRaft(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	m := bareMember(t, clock.Now, func(c *Config) {
		c.Schedule = ScheduleConfig{StormInterval: -1, RandomStormSize: -1, MaxPerTick: 1}
	})
	st, prop := newFakeState(), &fakeProposer{}
	s := newScheduler(m)
	s.state, s.proposer, s.lastStorm = st, prop, clock.Now()
	a, b, c, busy := newTestNode(1), newTestNode(2), newTestNode(3), newTestNode(4)
	for _, n := range []*testNode{a, b, c, busy} {
		st.addNode(n)
	}
	busyAddr := busy.key.Address()
	open := &truegpuv1.IssuedChallenge{Id: []byte("open challenge"), Address: busyAddr[:]}
	st.addChallenge(&truegpuv1.ChallengeState{Challenge: open, Outcome: fsm.OutcomePending})
	s.sync(clock.Now())
	if len(s.devs) != 4 {
		t.Fatalf("scheduler knows %d devices, want 4", len(s.devs))
	}
	// Due times: a at +1s, c at +2s, busy at +2.5s, b at +3s.
	start := clock.Now()
	s.due = nil
	for n, at := range map[*testNode]time.Duration{a: time.Second, c: 2 * time.Second, busy: 2500 * time.Millisecond, b: 3 * time.Second} {
		k := deviceKey{n.key.Address(), 0}
		heap.Push(&s.due, dueEntry{start.Add(at), k, s.gens[k]})
	}
	overdue := []byte("overdue challenge")
	st.due = [][]byte{overdue}

	issued := func() []ethcrypto.Address {
		var out []ethcrypto.Address
		for _, cmd := range prop.proposed() {
			for _, ch := range cmd.GetIssueChallenges().GetChallenges() {
				out = append(out, ethcrypto.Address(ch.Address))
			}
		}
		return out
	}
	clock.Advance(2600 * time.Millisecond) // a, c and busy are due; b is not
	for range 3 {
		if err := s.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cmds := prop.proposed()
	if len(cmds) == 0 || len(cmds[0].GetExpireChallenges().GetChallengeIds()) != 1 || string(cmds[0].GetExpireChallenges().ChallengeIds[0]) != string(overdue) {
		t.Fatalf("first command %v, want the expiry of the overdue challenge", cmds)
	}
	got := issued()
	if len(got) != 2 || got[0] != a.key.Address() || got[1] != c.key.Address() {
		t.Fatalf("issued to %v, want %s then %s (earliest due first, one per tick; the busy device skipped, b not due)", got, a.addr(), c.addr())
	}
	var ch *truegpuv1.IssuedChallenge
	for _, cmd := range cmds {
		if is := cmd.GetIssueChallenges(); is != nil {
			ch = is.Challenges[0]
			break
		}
	}
	class, err := gpuclass.Lookup(a.dev.ClaimedClass)
	if err != nil {
		t.Fatal(err)
	}
	p := m.cfg.Profile
	id := truegpuv1.ChallengeID(ch.Nonce, ch.Address, ch.DeviceIndex, ch.IssuedAtUnixMs)
	if len(ch.Nonce) != 32 || string(ch.Id) != string(id[:]) || ch.IssuedAtUnixMs != clock.Now().UnixMilli() ||
		ch.CommitDeadlineUnixMs-ch.IssuedAtUnixMs != int64(class.Deadline(p.M, p.N, p.K)) || ch.Profile != p.ID() {
		t.Fatalf("challenge %v not sized from the claimed class %s", ch, class.Name)
	}
	// b becomes due; busy still has its open challenge.
	clock.Advance(time.Second)
	if err := s.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := issued(); len(got) != 3 || got[2] != b.key.Address() {
		t.Fatalf("issued to %v, want b third", got)
	}
	// A refused issue is the tick's error.
	prop.fail = func(cmd *truegpuv1.Command) error {
		if cmd.GetIssueChallenges() != nil {
			return ErrNotLeader
		}
		return nil
	}
	k := deviceKey{a.key.Address(), 0}
	heap.Push(&s.due, dueEntry{clock.Now(), k, s.gens[k]})
	if err := s.tick(context.Background()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("tick with a refused issue: %v", err)
	}
}
