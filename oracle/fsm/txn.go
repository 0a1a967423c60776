package fsm

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// txn applies the commands of a batch of log entries. Each command's writes
// are staged in an overlay and move to the batch's staged writes only if
// the command succeeds, so a failing command leaves no trace. The staged
// writes go to a Pebble batch once, in key order, when the entries are
// done (writeSorted).
//
// Point reads see the running command's overlay, then the staged writes,
// then the database, so no indexed Pebble batch is needed: indexing every
// write costs a skiplist insert, and the commonest commands (issue,
// commit, verdict) only do point reads. The few commands that scan a
// prefix switch to an indexed batch at their first scan; from then on each
// command's writes go to it as the command succeeds.
type txn struct {
	f       *FSM
	b       *pebble.Batch
	indexed bool
	index   uint64
	at      int64
	overlay map[string][]byte // nil value: deleted
	staged  map[string][]byte // writes of the applied commands of the batch; nil value: deleted
	seq     uint32
	note    Notification
	pending Notification
	// Open-set changes of the running command, and of the applied
	// commands of the batch (see openIndex).
	pendingOpen, opens []openOp
}

func (t *txn) get(k []byte) ([]byte, bool, error) {
	if v, ok := t.overlay[string(k)]; ok {
		return v, v != nil, nil
	}
	if v, ok := t.staged[string(k)]; ok {
		return v, v != nil, nil
	}
	v, closer, err := t.f.db.Get(k)
	if err == pebble.ErrNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("fsm: read state: %w", err)
	}
	out := slices.Clone(v)
	closer.Close()
	return out, true, nil
}

func (t *txn) set(k, v []byte) {
	if v == nil {
		v = []byte{}
	}
	t.overlay[string(k)] = v
}

func (t *txn) del(k []byte) { t.overlay[string(k)] = nil }

func (t *txn) getMsg(k []byte, m proto.Message) (bool, error) {
	v, ok, err := t.get(k)
	if err != nil || !ok {
		return ok, err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("fsm: corrupt record %q: %w", k, err)
	}
	return true, nil
}

func (t *txn) putMsg(k []byte, m proto.Message) {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("fsm: encode record %q: %v", k, err))
	}
	t.set(k, v)
}

// writeSorted writes staged changes (nil: delete) to b in key order. The
// order makes the batch identical however the map iterates, and it is the
// order the memtable inserts them in: keys that follow one another (new
// challenge ids, deadlines) then each land next to the one before, where
// the skiplist's cached position finds them, instead of being searched for
// from the top.
func writeSorted(b *pebble.Batch, m map[string][]byte) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if v := m[k]; v == nil {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), v, nil)
		}
		if err != nil {
			panic(fmt.Sprintf("fsm: stage write: %v", err))
		}
	}
}

// scan visits the committed-batch keys with prefix (not the overlay of the
// running command); handlers scan before they write. The first scan of a
// batch moves its writes into an indexed batch, which iterates them merged
// with the database.
func (t *txn) scan(prefix []byte, fn func(k, v []byte) error) error {
	if !t.indexed {
		t.b.Close()
		t.b, t.indexed = t.f.db.NewIndexedBatch(), true
		writeSorted(t.b, t.staged)
	}
	return each(t.b, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}, fn)
}

// The records the handlers read through the transaction (records.go).

func (t *txn) meta() (*truegpuv1.MetaState, error) { return readMeta(t) }

func (t *txn) node(addr []byte) (*truegpuv1.NodeRecord, error) { return readNode(t, addr) }

func (t *txn) challenge(id []byte) (*truegpuv1.ChallengeState, error) { return readChallenge(t, id) }
