package contracts

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// BenchmarkGas reports the EVM execution gas of each contract call as the
// metric gas/op (execution only: without the 21000 base cost and calldata
// of a real transaction). ns/op measures go-ethereum's interpreter, not
// the chain.
func BenchmarkGas(b *testing.B) {
	for _, cfg := range []struct{ n, k int }{{3, 2}, {5, 3}, {7, 5}} {
		b.Run(fmt.Sprintf("deploy-feed-%dof%d", cfg.k, cfg.n), func(b *testing.B) {
			var gas uint64
			for b.Loop() {
				gas = newFixture(b, cfg.n, cfg.k).deployGas
			}
			b.ReportMetric(float64(gas), "gas/op")
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
			epoch := uint64(1)
			for b.Loop() {
				r, _ := f.report(b, epoch)
				_, g, err := f.feed.call(nil, "submit", toABI(r), f.sign(b, r, signers...))
				if err != nil {
					b.Fatal(err)
				}
				if epoch == 1 {
					first = g
				}
				gas = g
				epoch++
				f.chain.time += 3600
			}
			b.ReportMetric(float64(first), "first-gas")
			b.ReportMetric(float64(gas), "gas/op")
		})
	}
	for _, leaves := range []int{16, 1024, 65536} {
		b.Run(fmt.Sprintf("verifyScore-%dleaves", leaves), func(b *testing.B) {
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
			for b.Loop() {
				out, g, err := f.feed.call(nil, "requireScore", addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof), big.NewInt(3600))
				if err != nil || out[0].(uint64) != 1 {
					b.Fatal(err)
				}
				gas = g
			}
			b.ReportMetric(float64(gas), "gas/op")
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
