package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func TestIDFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Shaped like challenge ids: the issue time (a handful of
	// milliseconds here) and then hash output.
	id := func() []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(1_700_000_000_000+rng.IntN(3)))
		for range 24 {
			b = append(b, byte(rng.Uint32()))
		}
		return b
	}
	var f idFilter
	const n = 100_000
	added := make([][]byte, n)
	for i := range added {
		added[i] = id()
		f.add(added[i])
	}
	if len(f.parts) < 3 {
		t.Fatalf("%d ids fit in %d parts; the filter did not grow", n, len(f.parts))
	}
	for i, a := range added {
		if !f.mayContain(a) {
			t.Fatalf("id %d was added but is reported absent", i)
		}
	}
	fp := 0
	for range n {
		if f.mayContain(id()) {
			fp++
		}
	}
	if fp > n/200 {
		t.Fatalf("%d of %d absent ids reported present (over 0.5%%)", fp, n)
	}
	if !f.mayContain([]byte("short")) {
		t.Fatal("an id too short to hash must read as maybe present")
	}
}

// TestApplyCacheRebuilt checks that the device counts, the challenge-id
// filter and the open-challenge index agree with Pebble after a batch that
// registers and issues at once, after reopening the state, and after a
// restore into another replica.
func TestApplyCacheRebuilt(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := nodeKey([]byte("cache")).Address()
	now := int64(1_700_000_000_000)
	issue := func(dev uint32, nonceByte byte) *truegpuv1.Command {
		nonce := bytes.Repeat([]byte{nonceByte}, 32)
		id := truegpuv1.ChallengeID(nonce, a[:], dev, now)
		return &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: now, Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{
			Challenges: []*truegpuv1.IssuedChallenge{{Id: id[:], Address: a[:], Nonce: nonce, DeviceIndex: dev, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000, ProofDeadlineUnixMs: now + 2000}}}}}
	}
	reg := &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: now, Body: &truegpuv1.Command_RegisterNode{RegisterNode: signRegister(&truegpuv1.RegisterNodeCommand{
		Address: a[:], Devices: []*truegpuv1.Device{device(0, "GPU-c0"), device(1, "GPU-c1")}})}}
	// One entry registers the node and issues to it.
	batch := &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_Batch{Batch: &truegpuv1.CommandBatch{Commands: []*truegpuv1.Command{reg, issue(1, 1), issue(1, 1)}}}}
	res := f.Apply(entry(t, 1, batch)).(*Result)
	if res.Errs[0] != nil || res.Errs[1] != nil {
		t.Fatalf("register and issue in one entry: %v", res.Errs)
	}
	if !errors.Is(res.Errs[2], ErrConflict) {
		t.Fatalf("second issue of one challenge in the same entry: %v, want ErrConflict", res.Errs[2])
	}
	check := func(name string, f *FSM) {
		t.Helper()
		if !f.Registered(a) {
			t.Fatalf("%s: the registered node reads as unregistered", name)
		}
		if err := apply1(t, f, issue(1, 1)); !errors.Is(err, ErrConflict) {
			t.Fatalf("%s: reissue: %v, want ErrConflict", name, err)
		}
		if err := apply1(t, f, issue(2, 2)); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("%s: issue to device 2 of 2: %v, want ErrInvalidCommand", name, err)
		}
		open, err := f.OpenChallenges(a)
		if err != nil || len(open) != 1 || open[0].Challenge.DeviceIndex != 1 {
			t.Fatalf("%s: open challenges %v %v, want the one to device 1", name, open, err)
		}
		if err := apply1(t, f, issue(0, 3)); err != nil {
			t.Fatalf("%s: fresh issue: %v", name, err)
		}
		if _, n, err := f.ChallengeHistory(a, 8); err != nil || n != 2 {
			t.Fatalf("%s: %d open after a second issue (%v), want 2", name, n, err)
		}
	}
	snap := snapshotBytes(t, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	check("reopened", f)

	g, err := Open(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// A replica whose cache holds other state before the restore.
	other := nodeKey([]byte("other")).Address()
	g.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncode(t, &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_RegisterNode{RegisterNode: signRegister(&truegpuv1.RegisterNodeCommand{
		Address: other[:], Devices: []*truegpuv1.Device{device(0, "GPU-o")}})}})})
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.cache.devices[other]; ok || g.Registered(other) {
		t.Fatal("restore kept the device count of a node the snapshot does not hold")
	}
	check("restored", g)
}

func mustEncode(t *testing.T, c *truegpuv1.Command) []byte {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRetention: closing epoch E deletes the challenges decided in epoch
// E-RetainEpochs (accepted and expired alike) with their history rows,
// keeps the counts they left in the node record, and a replay of a
// deleted challenge's issue is refused.
func TestRetention(t *testing.T) {
	f := openFSM(t) // RetainEpochs 2
	a := nodeKey([]byte("retention")).Address()
	now := int64(1_700_000_000_000)
	at := func(body any) *truegpuv1.Command {
		now += 10
		return commandAt(now, body)
	}
	must := func(c *truegpuv1.Command) {
		t.Helper()
		if err := apply1(t, f, c); err != nil {
			t.Fatal(err)
		}
	}
	must(at(signRegister(&truegpuv1.RegisterNodeCommand{Address: a[:], Devices: []*truegpuv1.Device{device(0, "GPU-r")}})))
	n := byte(0)
	issue := func() *truegpuv1.IssuedChallenge {
		n++
		nonce := bytes.Repeat([]byte{n}, 32)
		id := truegpuv1.ChallengeID(nonce, a[:], 0, now)
		ch := &truegpuv1.IssuedChallenge{Id: id[:], Address: a[:], Nonce: nonce, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000, ProofDeadlineUnixMs: now + 2000}
		must(at(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}))
		return ch
	}
	accept := func(ch *truegpuv1.IssuedChallenge) {
		must(at(signCommit(ch.Address, &truegpuv1.RecordCommitmentCommand{ChallengeId: ch.Id, Root: make([]byte, 32), ReceivedAtUnixMs: now, SampleSeed: make([]byte, SampleSeedSize)})))
		must(at(&truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{signVerdict(ch.Address, &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Accepted: true, DecidedAtUnixMs: now, Proof: []byte{1}})}}))
	}
	ch1, ch2 := issue(), issue()
	accept(ch1)
	now += 5000
	must(at(&truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{ch2.Id}}))
	must(at(&truegpuv1.CloseEpochCommand{Epoch: 1}))
	ch3 := issue()
	accept(ch3)
	must(at(&truegpuv1.CloseEpochCommand{Epoch: 2}))
	if _, err := f.Challenge(ch1.Id); err != nil {
		t.Fatalf("epoch 1 challenge deleted after closing epoch 2 with retention 2: %v", err)
	}
	must(at(&truegpuv1.CloseEpochCommand{Epoch: 3}))
	for _, ch := range []*truegpuv1.IssuedChallenge{ch1, ch2} {
		if _, err := f.Challenge(ch.Id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("epoch 1 challenge after closing epoch 3: %v, want ErrNotFound", err)
		}
	}
	hist, _, err := f.ChallengeHistory(a, 16)
	if err != nil || len(hist) != 1 || hist[0].ChallengeId != truegpuv1.FormatChallengeID(ch3.Id) {
		t.Fatalf("history after pruning epoch 1: %v %v, want only the epoch-2 challenge", hist, err)
	}
	rec, err := f.Node(a)
	if err != nil || rec.Counters.Accepted != 2 || rec.Counters.Missed != 1 {
		t.Fatalf("node counters after pruning: %v %v", rec.GetCounters(), err)
	}
	if es, err := f.Epoch(1); err != nil || len(es.VerdictChallengeIds) != 2 {
		t.Fatalf("epoch 1 report after pruning: %v %v, want its two challenge ids", es, err)
	}
	// A replay of the first issue is refused: its deadline has passed.
	replay := at(&truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch1}})
	if err := apply1(t, f, replay); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("replayed issue of a pruned challenge: %v, want ErrInvalidCommand", err)
	}
	must(at(&truegpuv1.CloseEpochCommand{Epoch: 4}))
	if _, err := f.Challenge(ch3.Id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("epoch 2 challenge after closing epoch 4: %v, want ErrNotFound", err)
	}
	// Retention prunes a challenge's nonce with it: no key of the pruned
	// challenges is left behind.
	for _, ch := range []*truegpuv1.IssuedChallenge{ch1, ch2, ch3} {
		_, closer, err := f.db.Get(key(prefixNonce, ch.Nonce))
		if err == nil {
			closer.Close()
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			t.Fatalf("nonce of pruned challenge %s still in the state (%v)", truegpuv1.FormatChallengeID(ch.Id), err)
		}
	}
}

// TestRestoreManyTables restores a snapshot written into many small tables
// over a replica with other state, and checks that a corrupt stream leaves
// the restored state and no temporary files behind.
func TestRestoreManyTables(t *testing.T) {
	defer func(n int) { restoreTableBytes = n }(restoreTableBytes)
	restoreTableBytes = 4 << 10
	src := openFSM(t)
	g := newGen(21)
	for i := range 400 {
		src.Apply(entry(t, uint64(i+1), g.next()))
	}
	snap := snapshotBytes(t, src)
	if len(snap) < 8*restoreTableBytes {
		t.Fatalf("snapshot of %d bytes is too small to need several tables", len(snap))
	}
	dir := t.TempDir()
	dst, err := Open(dir, Config{RetainEpochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	h := newGen(22)
	for i := range 50 {
		dst.Apply(entry(t, uint64(i+1), h.next()))
	}
	// RestoreHold sees both stages, in order, with the tables written
	// (and the state not yet replaced) at the second.
	var stages []RestoreStage
	RestoreHold = func(st RestoreStage) {
		tables, _ := filepath.Glob(filepath.Join(dir, "restore-*", "*.sst"))
		if st == RestoreTablesWritten && (len(tables) < 8 || dst.AppliedIndex() != 50) {
			t.Errorf("at %s: %d tables, applied index %d; want the tables written and the old state", st, len(tables), dst.AppliedIndex())
		}
		stages = append(stages, st)
	}
	defer func() { RestoreHold = nil }()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	RestoreHold = nil
	if !slices.Equal(stages, []RestoreStage{RestoreStarted, RestoreTablesWritten}) {
		t.Fatalf("RestoreHold saw %v", stages)
	}
	if mustHash(t, dst) != mustHash(t, src) || dst.AppliedIndex() != src.AppliedIndex() {
		t.Fatal("restored state differs from the source")
	}
	before := mustHash(t, dst)
	bad := slices.Clone(snap)
	bad[len(bad)-1] ^= 1 // checksum
	if err := dst.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("corrupt snapshot: %v, want ErrBadSnapshot", err)
	}
	if mustHash(t, dst) != before {
		t.Fatal("a failed restore changed the state")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "restore-*")); len(left) != 0 {
		t.Fatalf("temporary restore files left: %v", left)
	}
}
