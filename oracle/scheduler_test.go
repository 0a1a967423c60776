package oracle

import (
	"context"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
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
	s := &scheduler{m: m, cfg: m.cfg.Schedule, next: map[deviceKey]time.Time{}}
	if err := s.storms(ctx, recs, clock.Now()); err != nil {
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
	recs := func() []*truegpuv1.NodeRecord {
		var out []*truegpuv1.NodeRecord
		if err := m.fsm.Nodes(func(r *truegpuv1.NodeRecord) bool { out = append(out, r); return true }); err != nil {
			t.Fatal(err)
		}
		return out
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
	s := &scheduler{m: m, cfg: cfg, next: map[deviceKey]time.Time{}}
	if err := s.randomStorm(ctx, recs(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, ids := stormed(); n != 4 || len(ids) != 1 || ids[""] {
		t.Fatalf("random storm of 4: %d challenges under storm ids %v", n, ids)
	}
	// The stormed devices are busy; a storm larger than the fleet reaches
	// every other device.
	clock.Advance(time.Second)
	s.cfg.RandomStormSize = 100
	if err := s.randomStorm(ctx, recs(), clock.Now()); err != nil {
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
	s := &scheduler{m: m, cfg: m.cfg.Schedule, next: map[deviceKey]time.Time{}, lastStorm: clock.Now()}
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
