package contracts

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

var ether = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

func TestRewardPoolProRata(t *testing.T) {
	f := newFixture(t, 3, 2)
	f.entries = append(f.entries,
		reputation.Entry{Address: ethcrypto.KeyFromSeed([]byte("suspect")).Address(), Score: 5000, Status: reputation.StatusSuspect},
		reputation.Entry{Address: ethcrypto.KeyFromSeed([]byte("rejected")).Address(), Score: 0, Status: reputation.StatusRejected},
	)
	pool, _ := f.chain.deploy("RewardPool", f.feed.addr, ether, big.NewInt(3600))
	// Fund the pool through receive().
	if _, _, err := runtime.Call(pool.addr, nil, f.chain.cfg(new(big.Int).Mul(ether, big.NewInt(10)))); err != nil {
		t.Fatalf("fund: %v", err)
	}

	r1, tree := f.report(t, 1)
	if _, _, err := f.feed.call(nil, "submit", toABI(r1), f.sign(t, r1, 1, 2)); err != nil {
		t.Fatal(err)
	}
	record := func(e reputation.Entry) error {
		proof, err := tree.Proof(e.Address)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = pool.call(nil, "record", addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof))
		return err
	}
	paid := f.entries[:3]
	var total int64
	for _, e := range paid {
		if err := record(e); err != nil {
			t.Fatalf("record %s: %v", e.Address, err)
		}
		total += int64(e.Score)
	}
	wantRevert(t, record(paid[0]), "AlreadyRecorded")
	wantRevert(t, record(f.entries[5]), "NotEligible")
	wantRevert(t, record(f.entries[6]), "NotEligible")
	lying := f.entries[3]
	proof, _ := tree.Proof(lying.Address)
	_, _, err := pool.call(nil, "record", addr(lying.Address), big.NewInt(10000), uint8(lying.Status), proofArg(proof))
	wantRevert(t, err, "InvalidProof")

	_, _, err = pool.call(nil, "claim", uint64(1), addr(paid[0].Address))
	wantRevert(t, err, "EpochNotClosed")

	// The next report closes epoch 1.
	f.chain.time += 600
	r2, _ := f.report(t, 2)
	if _, _, err := f.feed.call(nil, "submit", toABI(r2), f.sign(t, r2, 0, 2)); err != nil {
		t.Fatal(err)
	}
	for _, e := range paid {
		before := f.chain.state.GetBalance(addr(e.Address)).ToBig()
		if _, _, err := pool.call(nil, "claim", uint64(1), addr(e.Address)); err != nil {
			t.Fatalf("claim %s: %v", e.Address, err)
		}
		got := new(big.Int).Sub(f.chain.state.GetBalance(addr(e.Address)).ToBig(), before)
		want := new(big.Int).Div(new(big.Int).Mul(ether, big.NewInt(int64(e.Score))), big.NewInt(total))
		if got.Cmp(want) != 0 {
			t.Fatalf("node %s paid %v, want %v (score %d of %d)", e.Address, got, want, e.Score, total)
		}
	}
	_, _, err = pool.call(nil, "claim", uint64(1), addr(paid[0].Address))
	wantRevert(t, err, "NothingToClaim")
	_, _, err = pool.call(nil, "claim", uint64(1), addr(f.entries[4].Address))
	wantRevert(t, err, "NothingToClaim")
}
