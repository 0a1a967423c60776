package fsm

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func TestIDFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	id := func() []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(rng.Uint32())
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
	a := ethcrypto.KeyFromSeed([]byte("cache")).Address()
	now := int64(1_700_000_000_000)
	issue := func(dev uint32, nonceByte byte) *truegpuv1.Command {
		nonce := bytes.Repeat([]byte{nonceByte}, 32)
		id := truegpuv1.ChallengeID(nonce, a[:], dev)
		return &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: now, Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{
			Challenges: []*truegpuv1.IssuedChallenge{{Id: id[:], Address: a[:], Nonce: nonce, DeviceIndex: dev, IssuedAtUnixMs: now, CommitDeadlineUnixMs: now + 1000, ProofDeadlineUnixMs: now + 2000}}}}}
	}
	reg := &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: now, Body: &truegpuv1.Command_RegisterNode{RegisterNode: &truegpuv1.RegisterNodeCommand{
		Address: a[:], Devices: []*truegpuv1.Device{device(0, "GPU-c0"), device(1, "GPU-c1")}}}}
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

	g := openFSM(t)
	// A replica whose cache holds other state before the restore.
	other := ethcrypto.KeyFromSeed([]byte("other")).Address()
	g.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncode(t, &truegpuv1.Command{Version: 1, Body: &truegpuv1.Command_RegisterNode{RegisterNode: &truegpuv1.RegisterNodeCommand{
		Address: other[:], Devices: []*truegpuv1.Device{device(0, "GPU-o")}}}})})
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.cache.devices[other]; ok {
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
