package oracle

import (
	"container/heap"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/testwait"
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
	s := &scheduler{m: m, cfg: m.cfg.Schedule}
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
	s := &scheduler{m: m, cfg: cfg}
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
	s := &scheduler{m: m, cfg: m.cfg.Schedule, lastStorm: clock.Now()}
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
	s := &scheduler{m: m, cfg: m.cfg.Schedule, lastStorm: clock.Now()}
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
