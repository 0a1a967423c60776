package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Reads serve the local replica's committed state; they may lag the leader.
// Callers that need linearizable reads confirm leadership and apply a
// barrier first (see package oracle).

func (f *FSM) getMsg(k []byte, m proto.Message) (bool, error) {
	v, closer, err := f.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fsm: read state: %w", err)
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("fsm: corrupt record %q: %w", k, err)
	}
	return true, nil
}

// Node returns a node's record.
func (f *FSM) Node(addr ethcrypto.Address) (*truegpuv1.NodeRecord, error) {
	return readNode(f, addr[:])
}

// Registered reports whether a node is registered, from memory (the device
// counts kept for applying issues), without reading Pebble: the cheap check
// a submission passes before anything else is spent on it. It may run a few
// microseconds ahead of the committed state while a batch that registers
// the node is being applied.
func (f *FSM) Registered(addr ethcrypto.Address) bool {
	return f.cache.registered(addr)
}

// DeviceCounts returns every registered node's device count from memory
// (no state read) and a cursor for DeviceChanges. Its cost grows with the
// fleet: the leader's scheduler calls it once when it starts leading.
// Counts may include writes of a batch that is being committed.
func (f *FSM) DeviceCounts() ([]DeviceCount, uint64) { return f.cache.deviceCounts() }

// DeviceChanges returns up to max device-count changes (registrations,
// re-registrations) made since cursor, oldest first, and the cursor to
// continue from. ok is false when the changes since cursor are no longer
// kept (the reader fell too far behind, or the state was restored from a
// snapshot): rebuild from DeviceCounts. A change may be reported before
// its batch is readable through Node.
func (f *FSM) DeviceChanges(cursor uint64, max int) (changes []DeviceCount, next uint64, ok bool) {
	return f.cache.deviceChanges(cursor, max)
}

// Nodes calls fn for every node in address order, from one consistent view,
// until fn returns false.
func (f *FSM) Nodes(fn func(*truegpuv1.NodeRecord) bool) error {
	return f.scanMsgs(prefixNode, nil, func() proto.Message { return &truegpuv1.NodeRecord{} }, func(m proto.Message) bool {
		return fn(m.(*truegpuv1.NodeRecord))
	})
}

// NodesFrom is Nodes starting at address from (inclusive).
func (f *FSM) NodesFrom(from ethcrypto.Address, fn func(*truegpuv1.NodeRecord) bool) error {
	return f.scanMsgs(prefixNode, key(prefixNode, from[:]), func() proto.Message { return &truegpuv1.NodeRecord{} }, func(m proto.Message) bool {
		return fn(m.(*truegpuv1.NodeRecord))
	})
}

func (f *FSM) scanMsgs(prefix, lower []byte, mk func() proto.Message, fn func(proto.Message) bool) error {
	if lower == nil {
		lower = prefix
	}
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		m := mk()
		if err := proto.Unmarshal(it.Value(), m); err != nil {
			return fmt.Errorf("fsm: corrupt record %q: %w", it.Key(), err)
		}
		if !fn(m) {
			break
		}
	}
	return it.Error()
}

// Challenge returns a challenge by id.
func (f *FSM) Challenge(id []byte) (*truegpuv1.ChallengeState, error) {
	return readChallenge(f, id)
}

// OpenChallenges returns the node's challenges that are pending or
// committed (no verdict yet), in challenge-id order.
func (f *FSM) OpenChallenges(addr ethcrypto.Address) ([]*truegpuv1.ChallengeState, error) {
	ids := f.open.ids(addr)
	out := make([]*truegpuv1.ChallengeState, 0, len(ids))
	for _, id := range ids {
		cs, err := f.Challenge(id[:])
		if err != nil {
			return nil, err
		}
		if cs.Outcome != OutcomePending && cs.Outcome != OutcomeCommitted {
			continue // decided after the open set was read
		}
		out = append(out, cs)
	}
	return out, nil
}

// DueChallenges returns up to limit ids of open challenges whose current
// deadline (commitment while pending, proof while committed) is before
// nowMs, oldest deadline first.
func (f *FSM) DueChallenges(nowMs int64, limit int) ([][]byte, error) {
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: prefixDeadline, UpperBound: key(prefixDeadline, be64(uint64(max(nowMs, 0))))})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][]byte
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		if len(k) == len(prefixDeadline)+8+32 {
			out = append(out, append([]byte(nil), k[len(prefixDeadline)+8:]...))
		}
	}
	return out, it.Error()
}

// Meta returns the cluster-wide counters.
func (f *FSM) Meta() (*truegpuv1.MetaState, error) { return readMeta(f) }

// Epoch returns a closed epoch.
func (f *FSM) Epoch(n uint64) (*truegpuv1.EpochState, error) {
	es := &truegpuv1.EpochState{}
	ok, err := f.getMsg(key(prefixEpoch, be64(n)), es)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: epoch %d is not closed", ErrNotFound, n)
	}
	return es, nil
}

// LatestEpoch returns the newest closed epoch, or the newest complete one
// when complete is set.
func (f *FSM) LatestEpoch(complete bool) (*truegpuv1.EpochState, error) {
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: prefixEpoch, UpperBound: prefixEnd(prefixEpoch)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.Last(); it.Valid(); it.Prev() {
		es := &truegpuv1.EpochState{}
		if err := proto.Unmarshal(it.Value(), es); err != nil {
			return nil, fmt.Errorf("fsm: corrupt epoch %d: %w", binary.BigEndian.Uint64(it.Key()[len(prefixEpoch):]), err)
		}
		if !complete || es.Report.GetComplete() {
			return es, nil
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: no closed epoch yet", ErrNotFound)
}

// Members returns the members' metadata, ordered by id.
func (f *FSM) Members() ([]*truegpuv1.SetMemberCommand, error) {
	var out []*truegpuv1.SetMemberCommand
	err := f.scanMsgs(prefixMember, nil, func() proto.Message { return &truegpuv1.SetMemberCommand{} }, func(m proto.Message) bool {
		out = append(out, m.(*truegpuv1.SetMemberCommand))
		return true
	})
	return out, err
}

// Domain returns the EIP-712 domain reports are signed under.
func (f *FSM) Domain() reputation.Domain { return f.cfg.Domain }

// ChallengeHistory returns up to n of the node's most recent challenges,
// newest first, and the number of its open (undecided) challenges.
func (f *FSM) ChallengeHistory(addr ethcrypto.Address, n int) ([]*truegpuv1.ChallengeRecord, uint64, error) {
	p := key(prefixHistory, addr[:])
	it, err := f.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, 0, err
	}
	var ids [][]byte
	for it.Last(); it.Valid() && len(ids) < n; it.Prev() {
		k := it.Key()
		ids = append(ids, append([]byte(nil), k[len(p)+8:]...))
	}
	if err := it.Close(); err != nil {
		return nil, 0, err
	}
	out := make([]*truegpuv1.ChallengeRecord, 0, len(ids))
	for _, id := range ids {
		cs, err := f.Challenge(id)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, ChallengeRecordOf(cs))
	}
	return out, uint64(f.open.count(addr)), nil
}

// ChallengeRecordOf is the API history row of a challenge.
func ChallengeRecordOf(cs *truegpuv1.ChallengeState) *truegpuv1.ChallengeRecord {
	ch := cs.Challenge
	r := &truegpuv1.ChallengeRecord{
		ChallengeId: truegpuv1.FormatChallengeID(ch.Id), DeviceIndex: ch.DeviceIndex, Profile: ch.Profile,
		IssuedAtUnixMs: ch.IssuedAtUnixMs, CommitDeadlineUnixMs: ch.CommitDeadlineUnixMs,
		ExpectedLatencyMs: ch.ExpectedLatencyMs, Outcome: cs.Outcome, StormId: ch.StormId,
		CommitLatencyMs: latency(ch.IssuedAtUnixMs, cs.ReceivedAtUnixMs),
	}
	if mp := ch.Memory; mp != nil {
		r.WalkLatencyMs, _ = WalkLatency(cs)
		r.WalkExpectedLatencyMs, r.WalkDeadlineMs = gpuclass.TimedExpectedLatency(mp.WalkExpectedMs), mp.WalkDeadlineMs
		if v := cs.Verdict; v != nil && v.WalkReceivedAtUnixMs != 0 {
			// A late walk: how late it was.
			r.WalkLatencyMs = latency(cs.ReceivedAtUnixMs, v.WalkReceivedAtUnixMs)
		}
	}
	if cs.Verdict != nil {
		r.Reason = cs.Verdict.Reason
	}
	if cs.Outcome == OutcomeMissed {
		switch {
		case len(cs.Root) == 0:
			r.Reason = string(reputation.ReasonLivenessMissed)
		case ch.Memory != nil && len(cs.WalkRoot) == 0: // committed, never walked
			r.Reason = string(reputation.ReasonWalkLate)
		default: // committed, never proven
			r.Reason = string(reputation.ReasonProofMissing)
		}
	}
	return r
}
