package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// The listing index: secondary keys that let ListNodes filter by status,
// claimed class and minimum score and order by score, address or last
// change while reading only the rows of the page, and a per-minute
// timeline of what the fleet's node records went through.
//
// The keys are state: Apply writes them in the same batch as the node
// record they describe (txn.indexNodes, called for every command that
// wrote a node record), so snapshots carry them, every replica holds the
// same keys and the state hash covers them. Every key is a function of
// one node record (its address, status, score_bp, updated_at_unix_ms and
// the claimed classes of its devices), except the timeline buckets, which
// count changes at the leader time of the commands that made them.
//
//	l/s<group><be32 ^score><addr20>   -> ""             score order
//	l/a<group><addr20>                -> be32 score     address order
//	l/u<group><be64 ^updated><addr20> -> be32 score     last-change order
//	l/t<be64 bucket start ms>         -> timeline bucket (uvarints)
//	\x00listindex                     -> index version (1 byte)
//
//	group = 's' <be32 status>                                   by status
//	      | 'c' <uvarint len(class)> <class> <be32 status>      by class and status
//
// Each node has one status group and one class group per distinct claimed
// class, and three keys in each. The score is the record's score_bp: the
// reputation model's view at the leader time of the last command that
// changed the node (registration, verdict, expiry, contest decision), not
// decayed to the time of the read; it is the score GetNode and ListNodes
// show. The complemented score and update time make the natural key order
// descending. A query for one status (and class) reads one group; without
// a status filter it merges the groups of every status present.
//
// A state without the marker key \x00listindex (written by a build before
// the index existed, or restored from such a snapshot) gets the index
// built from its node records when it is opened or restored; the result
// is what Apply would have written, so replicas that rebuilt and replicas
// that applied hold equal keys. Timeline buckets cannot be rebuilt: they
// start empty.
//
// In memory, beside the keys: node counts and a score histogram per group
// (listStats), loaded from the l/s keys on Open and Restore and updated
// after each batch commits. They answer GetFleetStats and a listing's
// total without reading the state.
var (
	keyListIndex    = []byte("\x00listindex")
	prefixList      = []byte("l/")
	prefixListScore = []byte("l/s")
	prefixListAddr  = []byte("l/a")
	prefixListUpd   = []byte("l/u")
	prefixTimeline  = []byte("l/t")
)

const listIndexVersion = 1

const (
	// TimelineBucketMs is the width of a timeline bucket, milliseconds
	// of leader time.
	TimelineBucketMs = 60_000
	// TimelineBuckets is how many buckets before the newest the state
	// keeps; older ones are deleted when a newer bucket is first written.
	TimelineBuckets = 120
	// MaxListExamined bounds the index entries one ListNodes call reads
	// and skips for a filter its order's index cannot apply by range (a
	// minimum score in address or last-change order). A call that reaches
	// it returns the rows found so far (possibly none) and a cursor to
	// continue from.
	MaxListExamined = 10_000
	// maxScoreBp is the highest score the reputation model gives.
	maxScoreBp = 10_000
)

// NodeOrder is the order of a node listing.
type NodeOrder uint8

// Orders of ListNodes.
const (
	// OrderAddress: by address, ascending.
	OrderAddress NodeOrder = iota
	// OrderScoreDesc: highest score first; equal scores by address,
	// ascending.
	OrderScoreDesc
	// OrderScoreAsc: lowest score first; equal scores by address,
	// descending (the score-descending order read backwards).
	OrderScoreAsc
	// OrderUpdatedDesc: most recently changed first; equal times by
	// address, ascending.
	OrderUpdatedDesc
)

// ErrBadCursor reports a cursor that is not one ListNodes returned for
// the query's order.
var ErrBadCursor = errors.New("fsm: not a cursor of this listing")

// NodeQuery selects, orders and pages nodes for ListNodes.
type NodeQuery struct {
	// Status keeps only nodes with this status; unspecified keeps all.
	Status truegpuv1.NodeStatus
	// Class keeps only nodes with a device that claims this class; empty
	// keeps all.
	Class string
	// MinScoreBp keeps only nodes with at least this score.
	MinScoreBp uint32
	// Order of the rows.
	Order NodeOrder
	// Limit is the most rows returned; at least 1.
	Limit int
	// After continues a listing after the position a previous page's
	// Next names; nil starts at the beginning.
	After []byte
}

// NodePage is one page of a listing.
type NodePage struct {
	// Nodes are the page's records, in the query's order.
	Nodes []*truegpuv1.NodeRecord
	// Next is the cursor of the next page (NodeQuery.After); nil when the
	// listing is done. A page can be shorter than the limit, even empty,
	// and still have a Next (MaxListExamined).
	Next []byte
	// Total is the number of nodes that match the filters, from the
	// in-memory counts.
	Total uint32
}

// listExamineLimit is MaxListExamined, a variable for tests.
var listExamineLimit = MaxListExamined

// suffix lengths of the three index families (sort key and address).
const (
	scoreSuffix = 4 + 20
	addrSuffix  = 20
	updSuffix   = 8 + 20
)

func statusGroup(st uint32) []byte { return append([]byte{'s'}, be32(st)...) }

// classPrefix is the group prefix shared by a class's status groups. The
// length prefix keeps one class's groups apart from a longer class that
// starts with the same bytes.
func classPrefix(class string) []byte {
	return append(binary.AppendUvarint([]byte{'c'}, uint64(len(class))), class...)
}

func classGroup(class string, st uint32) []byte { return append(classPrefix(class), be32(st)...) }

// parseGroup splits a group into its class (ok false for a status group)
// and status.
func parseGroup(g []byte) (class string, hasClass bool, st uint32, err error) {
	switch {
	case len(g) == 5 && g[0] == 's':
		return "", false, binary.BigEndian.Uint32(g[1:]), nil
	case len(g) > 5 && g[0] == 'c':
		n, used := binary.Uvarint(g[1:])
		if used > 0 && 1+used+int(n)+4 == len(g) {
			return string(g[1+used : 1+used+int(n)]), true, binary.BigEndian.Uint32(g[len(g)-4:]), nil
		}
	}
	return "", false, 0, fmt.Errorf("fsm: corrupt listing group %x", g)
}

// listEntry is what the listing index knows of a node record.
type listEntry struct {
	present  bool
	status   uint32
	score    uint32
	updated  int64
	accepted uint64
	classes  []string // distinct, sorted
}

// decodeListEntry reads the indexed fields of an encoded NodeRecord
// without decoding the rest (the reputation state, reasons, dimensions).
// It agrees with proto.Unmarshal on every field it reads.
func decodeListEntry(v []byte) (listEntry, error) {
	e := listEntry{present: true}
	bad := func() (listEntry, error) {
		return listEntry{}, errors.New("fsm: corrupt node record in the listing index")
	}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return bad()
		}
		v = v[n:]
		switch {
		case num == 2 && typ == protowire.BytesType: // devices
			dev, n := protowire.ConsumeBytes(v)
			if n < 0 {
				return bad()
			}
			v = v[n:]
			class, ok := stringField(dev, 2) // Device.claimed_class
			if !ok {
				return bad()
			}
			e.classes = append(e.classes, class)
			continue
		case num == 7 && typ == protowire.BytesType: // counters
			c, n := protowire.ConsumeBytes(v)
			if n < 0 {
				return bad()
			}
			v = v[n:]
			if a, ok := varintField(c, 2); !ok { // NodeCounters.accepted
				return bad()
			} else if a != nil {
				e.accepted = *a
			}
			continue
		case typ == protowire.VarintType && (num == 4 || num == 8 || num == 9):
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return bad()
			}
			v = v[n:]
			switch num {
			case 4:
				e.updated = int64(x)
			case 8:
				e.status = uint32(int32(x))
			case 9:
				e.score = uint32(x)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, v)
		if n < 0 {
			return bad()
		}
		v = v[n:]
	}
	slices.Sort(e.classes)
	e.classes = slices.Compact(e.classes)
	return e, nil
}

// stringField returns the last value of string field num in message b
// ("" when absent).
func stringField(b []byte, num protowire.Number) (string, bool) {
	out := ""
	for len(b) > 0 {
		n0, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		if n0 == num && typ == protowire.BytesType {
			s, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false
			}
			out, b = string(s), b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(n0, typ, b); n < 0 {
			return "", false
		}
		b = b[n:]
	}
	return out, true
}

// varintField returns the last value of varint field num in message b
// (nil when absent).
func varintField(b []byte, num protowire.Number) (*uint64, bool) {
	var out *uint64
	for len(b) > 0 {
		n0, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if n0 == num && typ == protowire.VarintType {
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			out, b = &x, b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(n0, typ, b); n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return out, true
}

func (e *listEntry) groups() [][]byte {
	out := [][]byte{statusGroup(e.status)}
	for _, c := range e.classes {
		out = append(out, classGroup(c, e.status))
	}
	return out
}

type listKV struct{ k, v string }

// listKeys returns the index keys (and values) of a node.
func listKeys(addr []byte, e listEntry) []listKV {
	if !e.present {
		return nil
	}
	sc := string(be32(e.score))
	upd := be64(^uint64(max(e.updated, 0)))
	var out []listKV
	for _, g := range e.groups() {
		out = append(out,
			listKV{string(key(prefixListScore, g, be32(^e.score), addr)), ""},
			listKV{string(key(prefixListAddr, g, addr)), sc},
			listKV{string(key(prefixListUpd, g, upd, addr)), sc})
	}
	return out
}

// statOp changes one group's in-memory count of nodes with a score.
type statOp struct {
	group string
	score uint32
	delta int32
}

// timelineCounts is one timeline bucket.
type timelineCounts struct {
	rejected, suspect, accepted, registered uint64
}

func (c timelineCounts) zero() bool { return c == timelineCounts{} }

func (c timelineCounts) encode() []byte {
	b := binary.AppendUvarint(nil, c.rejected)
	b = binary.AppendUvarint(b, c.suspect)
	b = binary.AppendUvarint(b, c.accepted)
	return binary.AppendUvarint(b, c.registered)
}

func decodeTimeline(v []byte) (timelineCounts, error) {
	var f [4]uint64
	for i := range f {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			return timelineCounts{}, errors.New("fsm: corrupt timeline bucket")
		}
		f[i], v = x, v[n:]
	}
	return timelineCounts{f[0], f[1], f[2], f[3]}, nil
}

// committed returns a key's value before the running command: the batch's
// staged writes, then the database.
func (t *txn) committed(k string) ([]byte, bool, error) {
	if v, ok := t.staged[k]; ok {
		return v, v != nil, nil
	}
	v, closer, err := t.f.db.Get([]byte(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("fsm: read state: %w", err)
	}
	defer closer.Close()
	return slices.Clone(v), true, nil
}

// indexNodes brings the listing index up to date with the node records the
// running command wrote (its overlay), before the overlay is staged: it
// writes the changed index keys and the timeline bucket of the command's
// leader time into the overlay, and queues the in-memory count changes
// for when the batch commits.
func (t *txn) indexNodes() error {
	var nodes []string
	for k := range t.overlay {
		if len(k) == len(prefixNode)+20 && k[:len(prefixNode)] == string(prefixNode) {
			nodes = append(nodes, k)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	slices.Sort(nodes)
	var ops []statOp
	var tl timelineCounts
	for _, k := range nodes {
		var old, cur listEntry
		if v, ok, err := t.committed(k); err != nil {
			return err
		} else if ok {
			if old, err = decodeListEntry(v); err != nil {
				return err
			}
		}
		if v := t.overlay[k]; v != nil {
			var err error
			if cur, err = decodeListEntry(v); err != nil {
				return err
			}
		}
		addr := []byte(k[len(prefixNode):])
		t.reindex(addr, old, cur)
		if old.present != cur.present || old.status != cur.status || old.score != cur.score || !slices.Equal(old.classes, cur.classes) {
			if old.present {
				for _, g := range old.groups() {
					ops = append(ops, statOp{string(g), old.score, -1})
				}
			}
			if cur.present {
				for _, g := range cur.groups() {
					ops = append(ops, statOp{string(g), cur.score, 1})
				}
			}
		}
		if !cur.present {
			continue
		}
		if !old.present {
			tl.registered++
		}
		rejected, suspect := uint32(truegpuv1.NodeStatus_NODE_STATUS_REJECTED), uint32(truegpuv1.NodeStatus_NODE_STATUS_SUSPECT)
		if cur.status == rejected && (!old.present || old.status != rejected) {
			tl.rejected++
		}
		if cur.status == suspect && (!old.present || old.status != suspect) {
			tl.suspect++
		}
		if cur.accepted > old.accepted {
			tl.accepted += cur.accepted - old.accepted
		}
	}
	if !tl.zero() {
		if err := t.addTimeline(tl); err != nil {
			return err
		}
	}
	t.f.list.pending = append(t.f.list.pending, ops...)
	return nil
}

// reindex replaces a node's index keys for entry old with those for cur.
func (t *txn) reindex(addr []byte, old, cur listEntry) {
	was := map[string]string{}
	for _, p := range listKeys(addr, old) {
		was[p.k] = p.v
	}
	for _, p := range listKeys(addr, cur) {
		if v, ok := was[p.k]; ok {
			delete(was, p.k)
			if v == p.v {
				continue
			}
		}
		t.set([]byte(p.k), []byte(p.v))
	}
	for k := range was {
		t.del([]byte(k))
	}
}

// addTimeline adds c to the bucket of the command's leader time. Creating
// a bucket deletes those more than TimelineBuckets before it.
func (t *txn) addTimeline(c timelineCounts) error {
	b := uint64(max(t.at, 0)) / TimelineBucketMs * TimelineBucketMs
	k := key(prefixTimeline, be64(b))
	v, ok, err := t.get(k)
	if err != nil {
		return err
	}
	var cur timelineCounts
	if ok {
		if cur, err = decodeTimeline(v); err != nil {
			return err
		}
	} else if b >= TimelineBuckets*TimelineBucketMs {
		cutoff := b - TimelineBuckets*TimelineBucketMs
		err := t.scan(prefixTimeline, func(k, _ []byte) error {
			if len(k) == len(prefixTimeline)+8 && binary.BigEndian.Uint64(k[len(prefixTimeline):]) < cutoff {
				t.del(slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	cur.rejected += c.rejected
	cur.suspect += c.suspect
	cur.accepted += c.accepted
	cur.registered += c.registered
	t.set(k, cur.encode())
	return nil
}

// listStats holds, per listing group, how many nodes it has and a
// histogram of their scores. Apply queues changes in pending (only the
// apply goroutine touches it) and commit applies them after the batch is
// committed; readers take mu.
type listStats struct {
	mu      sync.RWMutex
	groups  map[string]*groupStats
	pending []statOp
}

type groupStats struct {
	n     uint32
	hist  [maxScoreBp + 1]uint32
	above map[uint32]uint32 // scores over maxScoreBp (the model gives none)
}

func (g *groupStats) add(score uint32, d int32) {
	g.n = uint32(int64(g.n) + int64(d))
	if score <= maxScoreBp {
		g.hist[score] = uint32(int64(g.hist[score]) + int64(d))
		return
	}
	if g.above == nil {
		g.above = map[uint32]uint32{}
	}
	if g.above[score] = uint32(int64(g.above[score]) + int64(d)); g.above[score] == 0 {
		delete(g.above, score)
	}
}

// atLeast counts the group's nodes with a score of at least min.
func (g *groupStats) atLeast(min uint32) uint32 {
	if min == 0 {
		return g.n
	}
	var n uint32
	for s, c := range g.above {
		if s >= min {
			n += c
		}
	}
	for s := int(min); s <= maxScoreBp; s++ {
		n += g.hist[s]
	}
	return n
}

// apply applies ops; mu is held.
func (s *listStats) apply(ops []statOp) {
	for _, op := range ops {
		g := s.groups[op.group]
		if g == nil {
			g = &groupStats{}
			s.groups[op.group] = g
		}
		g.add(op.score, op.delta)
		if g.n == 0 {
			delete(s.groups, op.group)
		}
	}
}

// commit applies the changes queued by the batch just committed.
func (s *listStats) commit() {
	if len(s.pending) == 0 {
		return
	}
	s.mu.Lock()
	s.apply(s.pending)
	s.mu.Unlock()
	clear(s.pending)
	s.pending = s.pending[:0]
}

// loadList makes sure the state holds the listing index (building it from
// the node records when it does not) and loads the in-memory counts.
func (f *FSM) loadList() error {
	if err := f.ensureListIndex(); err != nil {
		return err
	}
	groups := map[string]*groupStats{}
	err := each(f.db, &pebble.IterOptions{LowerBound: prefixListScore, UpperBound: prefixEnd(prefixListScore)}, func(k, _ []byte) error {
		if len(k) < len(prefixListScore)+5+scoreSuffix {
			return fmt.Errorf("fsm: corrupt listing key %x", k)
		}
		g := k[len(prefixListScore) : len(k)-scoreSuffix]
		if _, _, _, err := parseGroup(g); err != nil {
			return err
		}
		gs := groups[string(g)]
		if gs == nil {
			gs = &groupStats{}
			groups[string(g)] = gs
		}
		gs.add(^binary.BigEndian.Uint32(k[len(k)-scoreSuffix:]), 1)
		return nil
	})
	if err != nil {
		return err
	}
	f.list.mu.Lock()
	f.list.groups = groups
	f.list.pending = f.list.pending[:0]
	f.list.mu.Unlock()
	return nil
}

// ensureListIndex builds the listing index from the node records unless
// the state's marker says it is there.
func (f *FSM) ensureListIndex() error {
	v, closer, err := f.db.Get(keyListIndex)
	switch {
	case err == nil:
		ok := bytes.Equal(v, []byte{listIndexVersion})
		closer.Close()
		if ok {
			return nil
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("fsm: read listing index version: %w", err)
	}
	return f.rebuildList()
}

// rebuildList replaces the l/ keys with those the node records call for
// and sets the marker last, in batches; an interrupted rebuild leaves no
// marker and starts over at the next open.
func (f *FSM) rebuildList() error {
	b := f.db.NewBatch()
	if err := b.DeleteRange(prefixList, prefixEnd(prefixList), nil); err != nil {
		b.Close()
		return err
	}
	n := 0
	err := each(f.db, &pebble.IterOptions{LowerBound: prefixNode, UpperBound: prefixEnd(prefixNode)}, func(k, v []byte) error {
		if len(k) != len(prefixNode)+20 {
			return fmt.Errorf("fsm: corrupt node key %x", k)
		}
		e, err := decodeListEntry(v)
		if err != nil {
			return err
		}
		for _, p := range listKeys(k[len(prefixNode):], e) {
			if err := b.Set([]byte(p.k), []byte(p.v), nil); err != nil {
				return err
			}
		}
		if n++; n%4096 == 0 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = f.db.NewBatch()
		}
		return nil
	})
	if err == nil {
		err = b.Set(keyListIndex, []byte{listIndexVersion}, nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	b.Close()
	if err != nil {
		return fmt.Errorf("fsm: build the listing index: %w", err)
	}
	return nil
}

// FleetCounts are node counts by status and by claimed class and status.
type FleetCounts struct {
	Total    uint32
	ByStatus map[truegpuv1.NodeStatus]uint32
	ByClass  map[string]map[truegpuv1.NodeStatus]uint32
}

// FleetCounts returns the node counts from memory (no state read), as of
// the last committed batch. A node with devices of two classes counts once
// under each.
func (f *FSM) FleetCounts() FleetCounts {
	out := FleetCounts{ByStatus: map[truegpuv1.NodeStatus]uint32{}, ByClass: map[string]map[truegpuv1.NodeStatus]uint32{}}
	f.list.mu.RLock()
	defer f.list.mu.RUnlock()
	for g, gs := range f.list.groups {
		class, hasClass, st, err := parseGroup([]byte(g))
		if err != nil || gs.n == 0 {
			continue
		}
		if !hasClass {
			out.ByStatus[truegpuv1.NodeStatus(st)] += gs.n
			out.Total += gs.n
			continue
		}
		if out.ByClass[class] == nil {
			out.ByClass[class] = map[truegpuv1.NodeStatus]uint32{}
		}
		out.ByClass[class][truegpuv1.NodeStatus(st)] += gs.n
	}
	return out
}

// countMatching counts the nodes that match q's filters, from memory.
func (f *FSM) countMatching(q NodeQuery) uint32 {
	f.list.mu.RLock()
	defer f.list.mu.RUnlock()
	var n uint32
	if q.Status != truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED {
		g := statusGroup(uint32(q.Status))
		if q.Class != "" {
			g = classGroup(q.Class, uint32(q.Status))
		}
		if gs := f.list.groups[string(g)]; gs != nil {
			n = gs.atLeast(q.MinScoreBp)
		}
		return n
	}
	prefix := "s"
	if q.Class != "" {
		prefix = string(classPrefix(q.Class))
	}
	for g, gs := range f.list.groups {
		if len(g) == len(prefix)+4 && g[:len(prefix)] == prefix {
			n += gs.atLeast(q.MinScoreBp)
		}
	}
	return n
}

// TimelineBucket is one bucket of the fleet timeline: what happened to node
// records in TimelineBucketMs of leader time from AtUnixMs.
type TimelineBucket struct {
	AtUnixMs int64
	// Rejected and Suspect count nodes that entered the status.
	Rejected, Suspect uint64
	// Accepted counts accepted verdicts.
	Accepted uint64
	// Registered counts new nodes.
	Registered uint64
}

// Timeline returns the kept timeline buckets that start at or after from,
// oldest first (including any past the reader's clock).
func (f *FSM) Timeline(from int64) ([]TimelineBucket, error) {
	var out []TimelineBucket
	err := each(f.db, &pebble.IterOptions{LowerBound: key(prefixTimeline, be64(uint64(max(from, 0)))), UpperBound: prefixEnd(prefixTimeline)}, func(k, v []byte) error {
		if len(k) != len(prefixTimeline)+8 {
			return fmt.Errorf("fsm: corrupt timeline key %x", k)
		}
		c, err := decodeTimeline(v)
		if err != nil {
			return err
		}
		out = append(out, TimelineBucket{AtUnixMs: int64(binary.BigEndian.Uint64(k[len(prefixTimeline):])),
			Rejected: c.rejected, Suspect: c.suspect, Accepted: c.accepted, Registered: c.registered})
		return nil
	})
	return out, err
}

// listHead is one group's iterator in a listing's merge.
type listHead struct {
	it    *pebble.Iterator
	plen  int // family prefix + group
	valid bool
}

func (h *listHead) suffix() []byte { return h.it.Key()[h.plen:] }

// ListNodes returns a page of the nodes that match q, in q's order, read
// from the listing index and one consistent view of the state. Its cost
// grows with the page (and with MaxListExamined where a minimum score is
// combined with the address or last-change order), not with the fleet.
//
// Paging is by position: a page continues after the sort key and address
// of the previous page's last row. A node whose sort key (score, status,
// last change) moves during a listing shows at its position when each
// page is read, so it can be skipped or listed more than once; every node
// that does not change during the listing is listed exactly once. In
// address order without a status filter no node is skipped or repeated.
func (f *FSM) ListNodes(q NodeQuery) (*NodePage, error) {
	var fam []byte
	slen, reverse, residual := 0, false, false
	switch q.Order {
	case OrderAddress:
		fam, slen, residual = prefixListAddr, addrSuffix, q.MinScoreBp > 0
	case OrderScoreDesc:
		fam, slen = prefixListScore, scoreSuffix
	case OrderScoreAsc:
		fam, slen, reverse = prefixListScore, scoreSuffix, true
	case OrderUpdatedDesc:
		fam, slen, residual = prefixListUpd, updSuffix, q.MinScoreBp > 0
	default:
		return nil, fmt.Errorf("%w: order %d", ErrBadCursor, q.Order)
	}
	if q.After != nil && len(q.After) != slen {
		return nil, ErrBadCursor
	}
	limit := max(q.Limit, 1)
	page := &NodePage{Total: f.countMatching(q)}
	snap := f.db.NewSnapshot()
	defer snap.Close()

	var groups [][]byte
	switch {
	case q.Status != truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED && q.Class != "":
		groups = [][]byte{classGroup(q.Class, uint32(q.Status))}
	case q.Status != truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED:
		groups = [][]byte{statusGroup(uint32(q.Status))}
	default:
		gp := []byte{'s'}
		if q.Class != "" {
			gp = classPrefix(q.Class)
		}
		var err error
		if groups, err = discoverGroups(snap, fam, gp, slen); err != nil {
			return nil, err
		}
	}
	heads := make([]*listHead, 0, len(groups))
	defer func() {
		for _, h := range heads {
			h.it.Close()
		}
	}()
	for _, g := range groups {
		p := key(fam, g)
		opts := &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)}
		if bytes.Equal(fam, prefixListScore) && q.MinScoreBp > 0 {
			// Scores of at least the minimum: complemented scores up to
			// the complemented minimum.
			opts.UpperBound = prefixEnd(key(p, be32(^q.MinScoreBp)))
		}
		it, err := snap.NewIter(opts)
		if err != nil {
			return nil, err
		}
		h := &listHead{it: it, plen: len(p)}
		heads = append(heads, h)
		switch {
		case q.After == nil && !reverse:
			h.valid = it.First()
		case q.After == nil:
			h.valid = it.Last()
		case !reverse:
			h.valid = it.SeekGE(key(p, q.After, []byte{0}))
		default:
			h.valid = it.SeekLT(key(p, q.After))
		}
	}
	pick := func() *listHead {
		var best *listHead
		for _, h := range heads {
			if !h.valid {
				continue
			}
			if best == nil {
				best = h
				continue
			}
			c := bytes.Compare(h.suffix(), best.suffix())
			if (c < 0) != reverse && c != 0 {
				best = h
			}
		}
		return best
	}
	iterErr := func() error {
		for _, h := range heads {
			if err := h.it.Error(); err != nil {
				return err
			}
		}
		return nil
	}
	examined := 0
	var last []byte
	for len(page.Nodes) < limit {
		h := pick()
		if h == nil {
			return page, iterErr()
		}
		last = slices.Clone(h.suffix())
		keep := !residual || (len(h.it.Value()) == 4 && binary.BigEndian.Uint32(h.it.Value()) >= q.MinScoreBp)
		if reverse {
			h.valid = h.it.Prev()
		} else {
			h.valid = h.it.Next()
		}
		if !keep {
			if examined++; examined >= listExamineLimit {
				page.Next = last
				return page, nil
			}
			continue
		}
		rec := &truegpuv1.NodeRecord{}
		addr := last[len(last)-20:]
		v, closer, err := snap.Get(key(prefixNode, addr))
		if err != nil {
			return nil, fmt.Errorf("fsm: listing index names node %x: %w", addr, err)
		}
		err = proto.Unmarshal(v, rec)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("fsm: corrupt record of node %x: %w", addr, err)
		}
		page.Nodes = append(page.Nodes, rec)
	}
	if err := iterErr(); err != nil {
		return nil, err
	}
	if pick() != nil {
		page.Next = last
	}
	return page, nil
}

// discoverGroups lists the groups with prefix gp that have keys in family
// fam, seeking from one group to the next.
func discoverGroups(r reader, fam, gp []byte, slen int) ([][]byte, error) {
	p := key(fam, gp)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][]byte
	for valid := it.First(); valid; {
		k := it.Key()
		if len(k) < len(fam)+len(gp)+4+slen {
			return nil, fmt.Errorf("fsm: corrupt listing key %x", k)
		}
		g := slices.Clone(k[len(fam) : len(k)-slen])
		out = append(out, g)
		valid = it.SeekGE(prefixEnd(key(fam, g)))
	}
	return out, it.Error()
}
