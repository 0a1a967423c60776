package fsm

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// listClasses are the claimed classes of the test fleets.
var listClasses = []string{"H100-SXM", "A100-80GB", "RTX4090", "L40S"}

// listFleet drives a state through Apply with nodes of varied classes,
// behaviour (and so statuses and scores), and some shared identities.
// Commands go in batch entries of up to 512.
type listFleet struct {
	t       testing.TB
	f       *FSM
	rng     *rand.Rand
	now     int64
	addrs   [][]byte
	kind    map[string]int // 0 honest, 1 flaky, 2 invalid
	epoch   uint64
	seed    uint64
	seq     int
	log     []*raft.Log // the entries applied
	pending []*truegpuv1.Command
	// frac is the share of nodes challenged in a round (default 1/2).
	frac float64
	// stub signs with stubSign (for a state built with stubRecover)
	// instead of the nodes' keys.
	stub bool
}

func newListFleet(t testing.TB, f *FSM, seed uint64) *listFleet {
	return &listFleet{t: t, f: f, rng: rand.New(rand.NewPCG(seed, 7)), now: 1_700_000_000_000, kind: map[string]int{}, epoch: 1, seed: seed, frac: 0.5}
}

// apply queues one command at the fleet's time.
func (lf *listFleet) apply(body any) {
	lf.pending = append(lf.pending, commandAt(lf.now, body))
	if len(lf.pending) >= 512 {
		lf.flush()
	}
}

// flush applies the queued commands as one entry; a failure is reported
// (Errorf: it may run off the test goroutine).
func (lf *listFleet) flush() {
	if len(lf.pending) == 0 {
		return
	}
	l := entry(lf.t, lf.f.AppliedIndex()+1, &truegpuv1.Command{Version: CommandVersion, Body: &truegpuv1.Command_Batch{Batch: &truegpuv1.CommandBatch{Commands: lf.pending}}})
	lf.log = append(lf.log, l)
	r := lf.f.Apply(l).(*Result)
	for i, err := range r.Errs {
		if err != nil {
			lf.t.Errorf("apply %T: %v", lf.pending[i].Body, err)
		}
	}
	lf.pending = nil
}

// sign returns the node's signed request m.
func (lf *listFleet) sign(addr []byte, m proto.Message) []byte {
	if lf.stub {
		return stubSign(addr, m)
	}
	return signedReq(addr, m)
}

func (lf *listFleet) newAddr() []byte {
	lf.seq++
	seed := fmt.Appendf(nil, "list-%d-%d", lf.seed, lf.seq)
	if lf.stub {
		h := ethcrypto.Keccak256(seed)
		return h[:20]
	}
	a := nodeKey(seed).Address()
	return a[:]
}

// register adds n nodes with one or two devices; about one in twelve
// devices copies an existing node's UUID.
func (lf *listFleet) register(n int) {
	for range n {
		a := lf.newAddr()
		var devs []*truegpuv1.Device
		for d := range 1 + lf.rng.IntN(2) {
			uuid := fmt.Sprintf("GPU-L-%d-%d-%d", lf.seed, lf.seq, d)
			if len(lf.addrs) > 0 && lf.rng.IntN(12) == 0 {
				uuid = fmt.Sprintf("GPU-L-%d-%d-0", lf.seed, 1+lf.rng.IntN(lf.seq-1))
			}
			dev := device(d, uuid)
			dev.ClaimedClass = listClasses[lf.rng.IntN(len(listClasses))]
			devs = append(devs, dev)
		}
		c := &truegpuv1.RegisterNodeCommand{Address: a, Devices: devs}
		c.SignedRequest = lf.sign(a, &truegpuv1.RegisterNodeRequest{Address: ethcrypto.Address(a).String(), Devices: devs, TimestampUnixMs: 1})
		lf.apply(c)
		lf.addrs = append(lf.addrs, a)
		lf.kind[string(a)] = []int{0, 0, 0, 0, 0, 1, 2}[lf.rng.IntN(7)]
		lf.now += int64(lf.rng.IntN(50))
	}
	lf.flush()
}

// round challenges a share of the nodes (device 0): honest nodes mostly
// pass, flaky ones often miss, invalid ones often fail; then it expires
// the rest and, every other round, closes the epoch.
func (lf *listFleet) round() {
	type ch struct {
		addr []byte
		id   []byte
	}
	var chs []ch
	issue := &truegpuv1.IssueChallengesCommand{}
	for _, a := range lf.addrs {
		if lf.rng.Float64() >= lf.frac {
			continue
		}
		var nonce [32]byte
		for i := range nonce {
			nonce[i] = byte(lf.rng.Uint32())
		}
		id := truegpuv1.ChallengeID(nonce[:], a, 0, lf.now)
		issue.Challenges = append(issue.Challenges, &truegpuv1.IssuedChallenge{Id: id[:], Address: a, Nonce: nonce[:], Profile: "test/v1", ClaimedClass: "H100-SXM",
			IssuedAtUnixMs: lf.now, CommitDeadlineUnixMs: lf.now + 2000, ProofDeadlineUnixMs: lf.now + 60000, ExpectedLatencyMs: 800})
		chs = append(chs, ch{a, id[:]})
		if len(issue.Challenges) == 256 {
			lf.apply(issue)
			issue = &truegpuv1.IssueChallengesCommand{}
		}
	}
	if len(issue.Challenges) > 0 {
		lf.apply(issue)
	}
	if len(chs) == 0 {
		lf.flush()
		return
	}
	lf.now += 300
	verdicts := &truegpuv1.RecordVerdictsCommand{}
	var expire [][]byte
	for _, c := range chs {
		k := lf.kind[string(c.addr)]
		r := lf.rng.IntN(10)
		switch {
		case k == 1 && r < 5, k == 0 && r == 0:
			expire = append(expire, c.id) // never commits
			continue
		}
		root := bytes.Repeat([]byte{byte(r + 1)}, 32)
		commit := &truegpuv1.RecordCommitmentCommand{ChallengeId: c.id, Root: root, ReceivedAtUnixMs: lf.now, SampleSeed: root[:SampleSeedSize]}
		commit.SignedRequest = lf.sign(c.addr, &truegpuv1.SubmitCommitmentRequest{ChallengeId: truegpuv1.FormatChallengeID(c.id), Address: ethcrypto.Address(c.addr).String(), Root: root})
		lf.apply(commit)
		if k == 1 && r == 5 {
			expire = append(expire, c.id) // commits, never proves
			continue
		}
		v := &truegpuv1.VerdictRecord{ChallengeId: c.id, Accepted: !(k == 2 && r < 6), DecidedAtUnixMs: lf.now, Proof: []byte{1, 2, 3}}
		if !v.Accepted {
			v.Reason = string(reputation.ReasonProofInvalid)
		}
		v.SignedRequest = lf.sign(c.addr, &truegpuv1.SubmitProofRequest{ChallengeId: truegpuv1.FormatChallengeID(c.id), Address: ethcrypto.Address(c.addr).String(), Proof: v.Proof})
		verdicts.Verdicts = append(verdicts.Verdicts, v)
	}
	lf.now += 200
	for i := 0; i < len(verdicts.Verdicts); i += 256 {
		lf.apply(&truegpuv1.RecordVerdictsCommand{Verdicts: verdicts.Verdicts[i:min(i+256, len(verdicts.Verdicts))]})
	}
	lf.now += 61_000
	for i := 0; i < len(expire); i += 256 {
		lf.apply(&truegpuv1.ExpireChallengesCommand{ChallengeIds: expire[i:min(i+256, len(expire))]})
	}
	if lf.rng.IntN(2) == 0 {
		lf.apply(&truegpuv1.CloseEpochCommand{Epoch: lf.epoch})
		lf.epoch++
	}
	lf.flush()
	lf.now += int64(lf.rng.IntN(120_000))
}

// stubSigners maps the digests stubSign signed to their nodes.
var stubSigners sync.Map

// stubSign marks a node request as signed by addr with a placeholder
// signature that stubRecover resolves: a benchmark state of many nodes
// without a secp256k1 signature and recovery for each.
func stubSign(addr []byte, m proto.Message) []byte {
	d, err := truegpuv1.SigningDigest(m)
	if err != nil {
		panic(err)
	}
	stubSigners.Store(d, ethcrypto.Address(addr))
	r := m.ProtoReflect()
	r.Set(r.Descriptor().Fields().ByName(truegpuv1.SignatureField), protoreflect.ValueOfBytes(make([]byte, ethcrypto.SignatureLen)))
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// stubRecover is Config.Recover for states built with stubSign.
func stubRecover(h [32]byte, _ []byte) (ethcrypto.Address, error) {
	if a, ok := stubSigners.Load(h); ok {
		return a.(ethcrypto.Address), nil
	}
	return ethcrypto.Address{}, fmt.Errorf("no stub signer for %x", h)
}

// buildListFleet makes a state of n nodes after rounds rounds.
func buildListFleet(t testing.TB, f *FSM, seed uint64, n, rounds int) *listFleet {
	lf := newListFleet(t, f, seed)
	lf.register(n)
	for range rounds {
		lf.round()
		lf.register(n / 40)
	}
	return lf
}

// nodeRows reads every node record, with its raw encoding's index entry.
func nodeRows(t testing.TB, f *FSM) []*truegpuv1.NodeRecord {
	t.Helper()
	var out []*truegpuv1.NodeRecord
	if err := f.Nodes(func(r *truegpuv1.NodeRecord) bool { out = append(out, r); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func recordClasses(r *truegpuv1.NodeRecord) []string {
	var cs []string
	for _, d := range r.Devices {
		cs = append(cs, d.ClaimedClass)
	}
	slices.Sort(cs)
	return slices.Compact(cs)
}

// bruteList is ListNodes by scanning every record: the reference.
func bruteList(rows []*truegpuv1.NodeRecord, q NodeQuery) []*truegpuv1.NodeRecord {
	var out []*truegpuv1.NodeRecord
	for _, r := range rows {
		if q.Status != truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED && r.Status != q.Status {
			continue
		}
		if q.Class != "" && !slices.Contains(recordClasses(r), q.Class) {
			continue
		}
		if r.ScoreBp < q.MinScoreBp {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *truegpuv1.NodeRecord) int {
		addr := bytes.Compare(a.Address, b.Address)
		switch q.Order {
		case OrderScoreDesc:
			return cmp.Or(cmp.Compare(b.ScoreBp, a.ScoreBp), addr)
		case OrderScoreAsc:
			return cmp.Or(cmp.Compare(a.ScoreBp, b.ScoreBp), -addr)
		case OrderUpdatedDesc:
			return cmp.Or(cmp.Compare(b.UpdatedAtUnixMs, a.UpdatedAtUnixMs), addr)
		}
		return addr
	})
	return out
}

// listAll pages through a query and returns the addresses in order and the
// totals of every page.
func listAll(t testing.TB, f *FSM, q NodeQuery) ([]string, []uint32) {
	t.Helper()
	var out []string
	var totals []uint32
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			t.Fatalf("%+v: the listing does not end", q)
		}
		p, err := f.ListNodes(q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if len(p.Nodes) > q.Limit {
			t.Fatalf("%+v: %d rows over the limit", q, len(p.Nodes))
		}
		for _, r := range p.Nodes {
			out = append(out, ethcrypto.Address(r.Address).String())
		}
		totals = append(totals, p.Total)
		if p.Next == nil {
			return out, totals
		}
		if len(p.Nodes) < q.Limit && len(p.Next) == 0 {
			t.Fatalf("%+v: empty cursor", q)
		}
		q.After = p.Next
	}
}

func addrsOf(rows []*truegpuv1.NodeRecord) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = ethcrypto.Address(r.Address).String()
	}
	return out
}

// statuses counts the records by status.
func statuses(rows []*truegpuv1.NodeRecord) map[truegpuv1.NodeStatus]int {
	out := map[truegpuv1.NodeStatus]int{}
	for _, r := range rows {
		out[r.Status]++
	}
	return out
}

// checkListIndex requires the l/ keys (but the timeline) to be exactly
// those the node records call for, and the in-memory counts to equal a
// recount of the records.
func checkListIndex(t testing.TB, f *FSM) {
	t.Helper()
	want := map[string]string{}
	groups := map[string]map[uint32]uint32{}
	err := each(f.db, &pebble.IterOptions{LowerBound: prefixNode, UpperBound: prefixEnd(prefixNode)}, func(k, v []byte) error {
		e, err := decodeListEntry(v)
		if err != nil {
			return err
		}
		var rec truegpuv1.NodeRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return err
		}
		if uint32(rec.Status) != e.status || rec.ScoreBp != e.score || rec.UpdatedAtUnixMs != e.updated ||
			rec.GetCounters().GetAccepted() != e.accepted || !slices.Equal(recordClasses(&rec), e.classes) {
			t.Errorf("node %x: index entry %+v disagrees with its record", k, e)
		}
		for _, p := range listKeys(k[len(prefixNode):], e) {
			want[p.k] = p.v
		}
		for _, g := range e.groups() {
			if groups[string(g)] == nil {
				groups[string(g)] = map[uint32]uint32{}
			}
			groups[string(g)][e.score]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = each(f.db, &pebble.IterOptions{LowerBound: prefixList, UpperBound: prefixEnd(prefixList)}, func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefixTimeline) {
			got[string(k)] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		extra, missing := 0, 0
		for k := range got {
			if _, ok := want[k]; !ok {
				extra++
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				missing++
			}
		}
		t.Fatalf("listing index: %d keys, want %d (%d extra, %d missing or different)", len(got), len(want), extra, missing)
	}
	f.list.mu.RLock()
	defer f.list.mu.RUnlock()
	if len(f.list.groups) != len(groups) {
		t.Fatalf("in-memory counts have %d groups, records %d", len(f.list.groups), len(groups))
	}
	for g, hist := range groups {
		gs := f.list.groups[g]
		var n uint32
		for s, c := range hist {
			n += c
			if gs == nil || gs.hist[s] != c {
				t.Fatalf("group %x: score %d counted wrong", g, s)
			}
		}
		if gs.n != n {
			t.Fatalf("group %x: %d nodes counted, records %d", g, gs.n, n)
		}
	}
}

// recountFleet counts records the way GetFleetStats used to, by scanning.
func recountFleet(rows []*truegpuv1.NodeRecord) FleetCounts {
	out := FleetCounts{ByStatus: map[truegpuv1.NodeStatus]uint32{}, ByClass: map[string]map[truegpuv1.NodeStatus]uint32{}}
	for _, r := range rows {
		out.Total++
		out.ByStatus[r.Status]++
		for _, c := range recordClasses(r) {
			if out.ByClass[c] == nil {
				out.ByClass[c] = map[truegpuv1.NodeStatus]uint32{}
			}
			out.ByClass[c][r.Status]++
		}
	}
	return out
}

func sameCounts(a, b FleetCounts) bool {
	return a.Total == b.Total && maps.Equal(a.ByStatus, b.ByStatus) &&
		maps.EqualFunc(a.ByClass, b.ByClass, func(x, y map[truegpuv1.NodeStatus]uint32) bool { return maps.Equal(x, y) })
}

// TestListNodesMatchesScan: every combination of status, class and
// minimum score filters, in every order and at several page sizes, pages
// through exactly the nodes a scan of every record selects, in the order
// the scan sorts them, with the scan's count as the total.
func TestListNodesMatchesScan(t *testing.T) {
	f := openFSM(t)
	buildListFleet(t, f, 1, 300, 10)
	rows := nodeRows(t, f)
	st := statuses(rows)
	t.Logf("%d nodes, by status %v", len(rows), st)
	if len(rows) < 300 || len(st) < 3 {
		t.Fatalf("fleet too uniform: %d nodes, statuses %v", len(rows), st)
	}
	checkListIndex(t, f)
	scores := map[uint32]bool{}
	for _, r := range rows {
		scores[r.ScoreBp] = true
	}
	if len(scores) < 20 {
		t.Fatalf("only %d distinct scores", len(scores))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	mins := []uint32{0, 1, 5000, 9000, 10000, 10001}
	for range 4 {
		mins = append(mins, rows[rng.IntN(len(rows))].ScoreBp)
	}
	statusOpts := []truegpuv1.NodeStatus{0, 1, 2, 3, 4}
	classOpts := append([]string{"", "no such class"}, listClasses...)
	orders := []NodeOrder{OrderAddress, OrderScoreDesc, OrderScoreAsc, OrderUpdatedDesc}
	checked := 0
	for _, s := range statusOpts {
		for _, c := range classOpts {
			for _, m := range mins {
				for _, o := range orders {
					q := NodeQuery{Status: s, Class: c, MinScoreBp: m, Order: o, Limit: []int{1, 7, 100, 1000}[rng.IntN(4)]}
					want := addrsOf(bruteList(rows, q))
					got, totals := listAll(t, f, q)
					if !slices.Equal(got, want) {
						t.Fatalf("%+v: listed %d nodes, a scan selects %d\n got %v\nwant %v", q, len(got), len(want), got, want)
					}
					for _, n := range totals {
						if int(n) != len(want) {
							t.Fatalf("%+v: total %d, a scan counts %d", q, n, len(want))
						}
					}
					checked++
				}
			}
		}
	}
	// Short (even empty) pages when the examine limit cuts a residual
	// filter: the listing still comes out whole.
	defer func(n int) { listExamineLimit = n }(listExamineLimit)
	listExamineLimit = 3
	for _, o := range []NodeOrder{OrderAddress, OrderUpdatedDesc} {
		q := NodeQuery{MinScoreBp: mins[len(mins)-1], Order: o, Limit: 5}
		got, _ := listAll(t, f, q)
		if want := addrsOf(bruteList(rows, q)); !slices.Equal(got, want) {
			t.Fatalf("examine limit %d, %+v: listed %d, want %d", listExamineLimit, q, len(got), len(want))
		}
	}
	t.Logf("%d listings checked", checked)

	// Cursors of another order, or of no listing, are refused.
	for _, c := range []struct {
		o     NodeOrder
		after []byte
	}{{OrderAddress, make([]byte, 24)}, {OrderScoreDesc, make([]byte, 20)}, {OrderUpdatedDesc, []byte{}}, {NodeOrder(9), nil}} {
		if _, err := f.ListNodes(NodeQuery{Order: c.o, After: c.after, Limit: 1}); err == nil {
			t.Errorf("order %d with a %d-byte cursor: no error", c.o, len(c.after))
		}
	}
}

// TestFleetCountsMatchRecount: after random command streams (the
// determinism generator's, with shared identities, failures and epoch
// closes, and the listing fleet's), applied with different batch
// boundaries, the in-memory counts equal a recount of the records, the
// index keys are those the records call for, and the timeline adds up.
func TestFleetCountsMatchRecount(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := newGen(seed)
			var logs []*raft.Log
			ref := openFSM(t)
			for i := range 500 {
				l := entry(t, uint64(len(logs)+1), g.next())
				logs = append(logs, l)
				ref.Apply(l)
				if i%50 == 49 {
					rows := nodeRows(t, ref)
					if got, want := ref.FleetCounts(), recountFleet(rows); !sameCounts(got, want) {
						t.Fatalf("after %d commands: counts %+v, recount %+v", i+1, got, want)
					}
					checkListIndex(t, ref)
				}
			}
			rng := rand.New(rand.NewPCG(seed, 9))
			f := openFSM(t)
			for i := 0; i < len(logs); {
				end := min(len(logs), i+1+rng.IntN(40))
				f.ApplyBatch(logs[i:end])
				i = end
			}
			if mustHash(t, f) != mustHash(t, ref) {
				t.Fatal("batched replica's state differs")
			}
			checkListIndex(t, f)
			if got, want := f.FleetCounts(), recountFleet(nodeRows(t, f)); !sameCounts(got, want) {
				t.Fatalf("batched: counts %+v, recount %+v", got, want)
			}
			checkTimeline(t, f)
		})
	}
	t.Run("fleet", func(t *testing.T) {
		f := openFSM(t)
		lf := newListFleet(t, f, 5)
		lf.register(60)
		for i := range 8 {
			lf.round()
			lf.register(5)
			if got, want := f.FleetCounts(), recountFleet(nodeRows(t, f)); !sameCounts(got, want) {
				t.Fatalf("round %d: counts %+v, recount %+v", i, got, want)
			}
		}
		checkListIndex(t, f)
		checkTimeline(t, f)
	})
}

// checkTimeline: while every bucket is kept, the registrations add up to
// the node count and the accepted verdicts to the nodes' counters, and
// every node now rejected or suspect entered that status in some bucket.
func checkTimeline(t testing.TB, f *FSM) {
	t.Helper()
	tl, err := f.Timeline(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) == 0 {
		t.Fatal("no timeline buckets")
	}
	if span := tl[len(tl)-1].AtUnixMs - tl[0].AtUnixMs; span >= TimelineBuckets*TimelineBucketMs {
		t.Fatalf("buckets span %d ms, more than the %d kept", span, TimelineBuckets)
	}
	var reg, acc, rej, sus uint64
	for i, b := range tl {
		if b.AtUnixMs%TimelineBucketMs != 0 || (i > 0 && b.AtUnixMs <= tl[i-1].AtUnixMs) {
			t.Fatalf("bucket %d starts at %d", i, b.AtUnixMs)
		}
		reg, acc, rej, sus = reg+b.Registered, acc+b.Accepted, rej+b.Rejected, sus+b.Suspect
	}
	rows := nodeRows(t, f)
	var accepted uint64
	for _, r := range rows {
		accepted += r.GetCounters().GetAccepted()
	}
	st := statuses(rows)
	first := tl[0].AtUnixMs
	if oldest := slices.MinFunc(rows, func(a, b *truegpuv1.NodeRecord) int { return cmp.Compare(a.RegisteredAtUnixMs, b.RegisteredAtUnixMs) }); oldest.RegisteredAtUnixMs < first {
		t.Logf("buckets were pruned (oldest registration %d, first bucket %d): sums not checked", oldest.RegisteredAtUnixMs, first)
		return
	}
	if reg != uint64(len(rows)) || acc != accepted || rej < uint64(st[truegpuv1.NodeStatus_NODE_STATUS_REJECTED]) || sus < uint64(st[truegpuv1.NodeStatus_NODE_STATUS_SUSPECT]) {
		t.Fatalf("timeline: %d registered, %d accepted, %d rejected, %d suspect; state: %d nodes, %d accepted, statuses %v", reg, acc, rej, sus, len(rows), accepted, st)
	}
}

// TestTimelinePruned: buckets older than TimelineBuckets before the newest
// are deleted when a newer bucket is first written.
func TestTimelinePruned(t *testing.T) {
	f := openFSM(t)
	lf := newListFleet(t, f, 6)
	lf.register(5)
	first := lf.now / TimelineBucketMs * TimelineBucketMs
	lf.now += (TimelineBuckets + 3) * TimelineBucketMs
	lf.register(1)
	tl, err := f.Timeline(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != 1 || tl[0].AtUnixMs <= first || tl[0].Registered != 1 {
		t.Fatalf("timeline %+v, want only the new bucket", tl)
	}
	checkListIndex(t, f)
}

// TestListIndexSnapshotAndRebuild: the index and counts travel in
// snapshots; a state without them (an older build's, or its snapshot) gets
// them built on open and on restore, equal to what Apply writes.
func TestListIndexSnapshotAndRebuild(t *testing.T) {
	f := openFSM(t)
	buildListFleet(t, f, 2, 150, 6)
	checkListIndex(t, f)
	listing := func(f *FSM) []string {
		got, _ := listAll(t, f, NodeQuery{Order: OrderScoreDesc, Limit: 17})
		return got
	}
	want, wantCounts := listing(f), f.FleetCounts()
	noTimeline := func(k []byte) bool { return !bytes.HasPrefix(k, prefixTimeline) }
	wantHash, err := f.hashState(noTimeline)
	if err != nil {
		t.Fatal(err)
	}

	// Snapshot and restore: the same state, hash and all.
	snap := snapshotBytes(t, f)
	g := openFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if mustHash(t, g) != mustHash(t, f) || !slices.Equal(listing(g), want) || !sameCounts(g.FleetCounts(), wantCounts) {
		t.Fatal("restored state lists or counts differently")
	}

	// strip deletes the index and its marker, as in an older build's state.
	strip := func(f *FSM) {
		b := f.db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange(prefixList, prefixEnd(prefixList), nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(keyListIndex, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	// A snapshot without the index restores with it rebuilt.
	strip(g)
	old := snapshotBytes(t, g)
	h := openFSM(t)
	if err := h.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	checkListIndex(t, h)
	if got, err := h.hashState(noTimeline); err != nil || got != wantHash {
		t.Fatalf("rebuilt after restore: state hash (without the timeline) differs: %v", err)
	}
	if !slices.Equal(listing(h), want) || !sameCounts(h.FleetCounts(), wantCounts) {
		t.Fatal("rebuilt after restore: lists or counts differently")
	}

	// A state directory without the index opens with it rebuilt, and a
	// rebuild that stopped half way (no marker) starts over.
	dir := t.TempDir()
	d, err := Open(dir, Config{RetainEpochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	strip(d)
	// Half an index: a few stray keys that the rebuild must drop.
	if err := d.db.Set(key(prefixListScore, statusGroup(9), make([]byte, scoreSuffix)), nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Open(dir, Config{RetainEpochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkListIndex(t, d)
	if got, err := d.hashState(noTimeline); err != nil || got != wantHash {
		t.Fatalf("rebuilt on open: state hash (without the timeline) differs: %v", err)
	}
	if !slices.Equal(listing(d), want) || !sameCounts(d.FleetCounts(), wantCounts) {
		t.Fatal("rebuilt on open: lists or counts differently")
	}
	// And it carries on like a replica that always had it.
	lf := newListFleet(t, f, 8)
	lf.now = 1_800_000_000_000
	meta, err := f.Meta()
	if err != nil {
		t.Fatal(err)
	}
	lf.epoch = meta.CurrentEpoch
	lf.register(20)
	for _, a := range want[:40] {
		addr, err := ethcrypto.ParseAddress(a)
		if err != nil {
			t.Fatal(err)
		}
		lf.addrs = append(lf.addrs, addr[:])
	}
	lf.round()
	lf.round()
	d.ApplyBatch(lf.log)
	checkListIndex(t, d)
	if a, b := mustHashExcept(t, d, noTimeline), mustHashExcept(t, f, noTimeline); a != b {
		t.Fatal("rebuilt replica diverges after more commands")
	}
}

func mustHashExcept(t testing.TB, f *FSM, keep func([]byte) bool) [32]byte {
	t.Helper()
	h, err := f.hashState(keep)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestListNodesConcurrentPaging pages through the fleet in every order
// while another goroutine applies rounds of verdicts to half the nodes
// (waiting for an entry between pages): in address order every node is
// listed exactly once; in every order each node whose record did not
// change during the listing is listed exactly once.
func TestListNodesConcurrentPaging(t *testing.T) {
	f := openFSM(t)
	lf := buildListFleet(t, f, 4, 200, 3)
	lf.addrs = lf.addrs[:len(lf.addrs)/2] // the nodes that change
	for _, o := range []NodeOrder{OrderAddress, OrderScoreDesc, OrderScoreAsc, OrderUpdatedDesc} {
		before := map[string]*truegpuv1.NodeRecord{}
		for _, r := range nodeRows(t, f) {
			before[ethcrypto.Address(r.Address).String()] = r
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					lf.round()
				}
			}
		}()
		seen := map[string]int{}
		q := NodeQuery{Order: o, Limit: 5}
		for pages := 0; ; pages++ {
			p, err := f.ListNodes(q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Nodes {
				seen[ethcrypto.Address(r.Address).String()]++
			}
			if p.Next == nil {
				break
			}
			q.After = p.Next
			// Let the other goroutine apply an entry between pages.
			for i, at := 0, f.AppliedIndex(); i < 10_000 && f.AppliedIndex() == at; i++ {
				time.Sleep(50 * time.Microsecond)
			}
		}
		close(stop)
		wg.Wait()
		changed := 0
		for a, r := range before {
			now, err := f.Node(ethcrypto.Address(r.Address))
			if err != nil {
				t.Fatal(err)
			}
			same := now.UpdatedAtUnixMs == r.UpdatedAtUnixMs
			if !same {
				changed++
			}
			switch n := seen[a]; {
			case o == OrderAddress && n != 1:
				t.Errorf("address order: node %s listed %d times", a, n)
			case same && n != 1:
				t.Errorf("order %d: unchanged node %s listed %d times", o, a, n)
			}
		}
		t.Logf("order %d: %d of %d nodes changed during the listing", o, changed, len(before))
		if changed == 0 || changed == len(before) {
			t.Errorf("order %d: %d of %d nodes changed during the listing; the test checks nothing", o, changed, len(before))
		}
	}
}
