package timed

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkCompute reports the reference GEMM's rate in GOPS
// (2·M·N·K per second / 1e9) with one worker and with every core.
func BenchmarkCompute(b *testing.B) {
	s := Spec{M: 128, N: 1024, K: 4096}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compute(context.Background(), s, [32]byte{1}, workers); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.Ops())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOPS")
		})
	}
}

// BenchmarkVerify measures the oracle's check at K = 16384.
func BenchmarkVerify(b *testing.B) {
	s := Spec{M: 8, N: 1024, K: 16384}
	nonce := [32]byte{2}
	res, err := Compute(context.Background(), s, nonce, 0)
	if err != nil {
		b.Fatal(err)
	}
	seed := [SeedSize]byte{3}
	op, err := res.Open(seed)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(s, nonce, res.Root(), seed, op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCell measures one native cell recomputation at K = 16384.
func BenchmarkCell(b *testing.B) {
	s := Spec{M: 4096, N: 4096, K: 16384}
	keys := Key([32]byte{4})
	var sink int32
	for b.Loop() {
		sink += Cell(s, keys, 17, 4000)
	}
	_ = sink
}
