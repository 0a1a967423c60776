package contracts

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// BenchmarkGas reports the EVM execution gas of each contract call as the
// metric gas/op, and tx-gas, the same plus the intrinsic cost of a Cancun
// transaction carrying that calldata (21000 + 16 per non-zero byte + 4 per
// zero byte; deployments add 32000 and 2 per initcode word). No call here
// clears storage, so there are no refunds. ns/op measures go-ethereum's
// interpreter, not the chain.
func intrinsicGas(data []byte, create bool) uint64 {
	g := uint64(21000)
	for _, c := range data {
		if c == 0 {
			g += 4
		} else {
			g += 16
		}
	}
	if create {
		g += 32000 + 2*uint64((len(data)+31)/32)
	}
	return g
}

// txGas is exec plus the intrinsic gas of calling method with args on k.
func txGas(b *testing.B, k *contract, exec uint64, method string, args ...any) float64 {
	data, err := k.art.ABI.Pack(method, args...)
	if err != nil {
		b.Fatal(err)
	}
	return float64(exec + intrinsicGas(data, false))
}

func BenchmarkGas(b *testing.B) {
	for _, cfg := range []struct{ n, k int }{{3, 2}, {5, 3}, {7, 5}} {
		b.Run(fmt.Sprintf("deploy-feed-%dof%d", cfg.k, cfg.n), func(b *testing.B) {
			var f *fixture
			for b.Loop() {
				f = newFixture(b, cfg.n, cfg.k)
			}
			var sorted []common.Address
			for _, m := range reputation.SortedMembers(f.members) {
				sorted = append(sorted, addr(m))
			}
			data, err := f.feed.art.DeployData(sorted, big.NewInt(int64(cfg.k)), f.params)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(f.deployGas), "gas/op")
			b.ReportMetric(float64(f.deployGas+intrinsicGas(data, true)), "tx-gas")
		})
		b.Run(fmt.Sprintf("submit-%dof%d", cfg.k, cfg.n), func(b *testing.B) {
			f := newFixture(b, cfg.n, cfg.k)
			signers := make([]int, cfg.k)
			for i := range signers {
				signers[i] = i
			}
			// The first report writes fresh storage slots; later ones
			// overwrite them and cost less.
			var first, gas uint64
			var tx float64
			epoch := uint64(1)
			for b.Loop() {
				r, _ := f.report(b, epoch)
				sigs := f.sign(b, r, signers...)
				_, g, err := f.feed.call(nil, "submit", toABI(r), sigs)
				if err != nil {
					b.Fatal(err)
				}
				if epoch == 1 {
					first = g
				}
				gas = g
				tx = txGas(b, f.feed, g, "submit", toABI(r), sigs)
				epoch++
				f.chain.time += 3600
			}
			b.ReportMetric(float64(first), "first-gas")
			b.ReportMetric(float64(gas), "gas/op")
			b.ReportMetric(tx, "tx-gas")
		})
	}
	for _, leaves := range []int{16, 1024, 65536} {
		b.Run(fmt.Sprintf("requireScore-%dleaves", leaves), func(b *testing.B) {
			f := newFixture(b, 3, 2)
			f.entries = nil
			for i := range leaves {
				var a ethcrypto.Address
				a[0], a[1], a[2], a[19] = byte(i>>16), byte(i>>8), byte(i), 1
				f.entries = append(f.entries, reputation.Entry{Address: a, Score: uint32(i % 10001), Status: reputation.StatusTrusted})
			}
			r, tree := f.report(b, 1)
			if _, _, err := f.feed.call(nil, "submit", toABI(r), f.sign(b, r, 0, 1)); err != nil {
				b.Fatal(err)
			}
			e := f.entries[leaves/2]
			proof, _ := tree.Proof(e.Address)
			var gas uint64
			args := []any{addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof), big.NewInt(3600)}
			for b.Loop() {
				out, g, err := f.feed.call(nil, "requireScore", args...)
				if err != nil || out[0].(uint64) != 1 {
					b.Fatal(err)
				}
				gas = g
			}
			b.ReportMetric(float64(gas), "gas/op")
			b.ReportMetric(txGas(b, f.feed, gas, "requireScore", args...), "tx-gas")
		})
	}
	b.Run("workproof-verifyProof-test-profile", func(b *testing.B) {
		wp := testWorkProof(b)
		c := newChain(b)
		v, _ := c.deploy("WorkVerifierTest")
		var gas uint64
		for b.Loop() {
			_, g, err := v.call(nil, "verifyProof", wp.proof, wp.inputs)
			if err != nil {
				b.Fatal(err)
			}
			gas = g
		}
		b.ReportMetric(float64(gas), "gas/op")
		b.ReportMetric(txGas(b, v, gas, "verifyProof", wp.proof, wp.inputs), "tx-gas")
	})
	b.Run("reward-record-and-claim", func(b *testing.B) {
		var recordGas, claimGas uint64
		for b.Loop() {
			f := newFixture(b, 3, 2)
			pool, _ := f.chain.deploy("RewardPool", f.feed.addr, ether, big.NewInt(3600))
			if _, _, err := runtime.Call(pool.addr, nil, f.chain.cfg(ether)); err != nil {
				b.Fatal(err)
			}
			r, tree := f.report(b, 1)
			if _, _, err := f.feed.call(nil, "submit", toABI(r), f.sign(b, r, 0, 1)); err != nil {
				b.Fatal(err)
			}
			e := f.entries[1]
			proof, _ := tree.Proof(e.Address)
			_, g, err := pool.call(nil, "record", addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof))
			if err != nil {
				b.Fatal(err)
			}
			recordGas = g
			r2, _ := f.report(b, 2)
			if _, _, err := f.feed.call(nil, "submit", toABI(r2), f.sign(b, r2, 0, 1)); err != nil {
				b.Fatal(err)
			}
			_, g, err = pool.call(nil, "claim", uint64(1), addr(e.Address))
			if err != nil {
				b.Fatal(err)
			}
			claimGas = g
		}
		b.ReportMetric(float64(recordGas), "record-gas")
		b.ReportMetric(float64(claimGas), "claim-gas")
	})
}
