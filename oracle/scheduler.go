package oracle

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

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

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }

func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *dueHeap) Push(x any) { *h = append(*h, x.(dueEntry)) }

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
//
// It reads the replicated state only through state and replicates only
// through proposer.
type scheduler struct {
	cfg       ScheduleConfig
	state     scheduleState
	proposer  commandProposer
	now       func() time.Time
	profile   *prover.Profile
	log       *slog.Logger
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

// scheduleState is what the scheduler reads of the replicated state
// (*fsm.FSM): the in-memory device counts and their change log, node
// records, open challenges and the deadline index.
type scheduleState interface {
	DeviceCounts() ([]fsm.DeviceCount, uint64)
	DeviceChanges(cursor uint64, max int) (changes []fsm.DeviceCount, next uint64, ok bool)
	Node(addr ethcrypto.Address) (*truegpuv1.NodeRecord, error)
	OpenChallenges(addr ethcrypto.Address) ([]*truegpuv1.ChallengeState, error)
	DueChallenges(nowMs int64, limit int) ([][]byte, error)
}

// newScheduler returns a scheduler of m's configuration that reads m's
// state machine and proposes through m. Its last storm is the zero time:
// the first tick storms unless lastStorm is set.
func newScheduler(m *Member) *scheduler {
	return &scheduler{cfg: m.cfg.Schedule, state: m.fsm, proposer: proposeFunc(m.Propose), now: m.cfg.Now, profile: m.cfg.Profile, log: m.log}
}

// node reads one node record.
func (s *scheduler) node(addr ethcrypto.Address) (*truegpuv1.NodeRecord, error) {
	s.reads++
	return s.state.Node(addr)
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
		all, cursor := s.state.DeviceCounts()
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
		changes, next, ok := s.state.DeviceChanges(s.cursor, 4096)
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

// tick expires overdue challenges, issues due ones and storms suspected
// groups. Its reads are the due devices' node records, the storms' and
// bounded lists of due challenges and registration changes.
func (s *scheduler) tick(ctx context.Context) error {
	now := s.now()
	s.sync(now)
	due, err := s.state.DueChallenges(now.UnixMilli(), 4096)
	if err != nil {
		return err
	}
	if len(due) > 0 {
		if _, err := s.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_ExpireChallenges{
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
		if _, err := s.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_IssueChallenges{
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

func (s *scheduler) busyDevices(addr ethcrypto.Address, rec *truegpuv1.NodeRecord) (map[uint32]bool, error) {
	busy := map[uint32]bool{}
	css, err := s.state.OpenChallenges(addr)
	if err != nil {
		return nil, err
	}
	for _, cs := range css {
		busy[cs.Challenge.DeviceIndex] = true
	}
	return busy, nil
}
