package oracle

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/testlog"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// fakeState is an in-memory stand-in for the state machine's reads
// (pipelineState and scheduleState): the records a test puts in it, with
// the answers *fsm.FSM gives for what is absent.
type fakeState struct {
	mu         sync.Mutex
	nodes      map[ethcrypto.Address]*truegpuv1.NodeRecord
	challenges map[string]*truegpuv1.ChallengeState
	due        [][]byte // what DueChallenges answers
	nodeReads  int
}

func newFakeState() *fakeState {
	return &fakeState{nodes: map[ethcrypto.Address]*truegpuv1.NodeRecord{}, challenges: map[string]*truegpuv1.ChallengeState{}}
}

// addNode records n as registered with its one device.
func (f *fakeState) addNode(n *testNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := n.key.Address()
	f.nodes[a] = &truegpuv1.NodeRecord{Address: a[:], Devices: []*truegpuv1.Device{n.dev}}
}

// addChallenge records a challenge state.
func (f *fakeState) addChallenge(cs *truegpuv1.ChallengeState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.challenges[string(cs.Challenge.Id)] = cs
}

func (f *fakeState) Registered(addr ethcrypto.Address) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.nodes[addr]
	return ok
}

func (f *fakeState) Node(addr ethcrypto.Address) (*truegpuv1.NodeRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodeReads++
	rec, ok := f.nodes[addr]
	if !ok {
		return nil, fsm.ErrNotFound
	}
	return rec, nil
}

func (f *fakeState) Challenge(id []byte) (*truegpuv1.ChallengeState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, ok := f.challenges[string(id)]
	if !ok {
		return nil, fsm.ErrNotFound
	}
	return cs, nil
}

func (f *fakeState) DeviceCounts() ([]fsm.DeviceCount, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fsm.DeviceCount
	for a, rec := range f.nodes {
		out = append(out, fsm.DeviceCount{Address: a, Devices: uint32(len(rec.Devices))})
	}
	return out, 0
}

func (f *fakeState) DeviceChanges(cursor uint64, max int) ([]fsm.DeviceCount, uint64, bool) {
	return nil, cursor, true
}

func (f *fakeState) OpenChallenges(addr ethcrypto.Address) ([]*truegpuv1.ChallengeState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*truegpuv1.ChallengeState
	for _, cs := range f.challenges {
		if string(cs.Challenge.Address) == string(addr[:]) && (cs.Outcome == fsm.OutcomePending || cs.Outcome == fsm.OutcomeCommitted) {
			out = append(out, cs)
		}
	}
	return out, nil
}

func (f *fakeState) DueChallenges(nowMs int64, limit int) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.due[:min(limit, len(f.due))], nil
}

// fakeProposer records the commands proposed to it and answers each with
// the next index, or with what fail returns for it.
type fakeProposer struct {
	mu    sync.Mutex
	cmds  []*truegpuv1.Command
	fail  func(*truegpuv1.Command) error
	index uint64
}

func (p *fakeProposer) propose(_ context.Context, c *truegpuv1.Command) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, c)
	if p.fail != nil {
		if err := p.fail(c); err != nil {
			return 0, err
		}
	}
	p.index++
	return p.index, nil
}

func (p *fakeProposer) proposed() []*truegpuv1.Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*truegpuv1.Command(nil), p.cmds...)
}

// bareMember is a Member with a configuration and its member-local caches
// only: no Raft, no state machine, no loops. tune adjusts the
// configuration before the defaults are applied.
func bareMember(t testing.TB, now func() time.Time, tune func(*Config)) *Member {
	t.Helper()
	cfg := Config{ID: "bare", Now: now, Logger: testlog.New(t)}
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.ensureDefaults(); err != nil {
		t.Fatal(err)
	}
	return &Member{cfg: cfg, log: cfg.Logger, recovered: ethcrypto.NewRecoverCache(1 << 10)}
}
