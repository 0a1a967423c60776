package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// msgReader reads one record of the state: a txn reads through the running
// command's overlay and the batch's staged writes, the FSM reads the
// committed state. The typed reads below serve both, so a handler and the
// read path see a record, and its absence, alike.
type msgReader interface {
	getMsg(k []byte, m proto.Message) (bool, error)
}

var (
	_ msgReader = (*txn)(nil)
	_ msgReader = (*FSM)(nil)
)

// readMeta returns the cluster-wide counters; a state without them is in
// epoch 1.
func readMeta(r msgReader) (*truegpuv1.MetaState, error) {
	m := &truegpuv1.MetaState{}
	ok, err := r.getMsg(keyMeta, m)
	if err != nil {
		return nil, err
	}
	if !ok {
		m.CurrentEpoch = 1
	}
	return m, nil
}

// readNode returns the record of the node at addr, or ErrNotFound.
func readNode(r msgReader, addr []byte) (*truegpuv1.NodeRecord, error) {
	rec := &truegpuv1.NodeRecord{}
	ok, err := r.getMsg(key(prefixNode, addr), rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: node %s", ErrNotFound, addrString(addr))
	}
	return rec, nil
}

// readChallenge returns the challenge with id, or ErrNotFound.
func readChallenge(r msgReader, id []byte) (*truegpuv1.ChallengeState, error) {
	cs := &truegpuv1.ChallengeState{}
	ok, err := r.getMsg(key(prefixChallenge, id), cs)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: challenge %s", ErrNotFound, truegpuv1.FormatChallengeID(id))
	}
	return cs, nil
}
