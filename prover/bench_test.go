package prover

import (
	"os"
	"testing"
)

// Benchmarks of the reference workload and of proving. Proving the standard
// profile needs its dev setup first (minutes); set TRUEGPU_BENCH_STANDARD=1
// to include it.

func BenchmarkCompute(b *testing.B) {
	for _, name := range []string{"test", "demo", "standard"} {
		p := mustProfile(b, name)
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Compute(p, testNonce(byte(i)))
			}
		})
	}
}

func BenchmarkMatrices(b *testing.B) {
	p := mustProfile(b, "standard")
	for i := 0; i < b.N; i++ {
		MatrixA(p, testNonce(1))
		MatrixB(p, testNonce(1))
	}
}

func BenchmarkNewTree(b *testing.B) {
	for _, name := range []string{"demo", "standard"} {
		p := mustProfile(b, name)
		cells := Compute(p, testNonce(1))
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := NewTree(p, cells); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSampleIndices(b *testing.B) {
	p := mustProfile(b, "standard")
	var root [32]byte
	for i := 0; i < b.N; i++ {
		SampleIndices(p, root, testSeed(3), testNonce(1), testAddress(2))
	}
}

func BenchmarkProve(b *testing.B) {
	names := []string{"test", "demo"}
	if os.Getenv("TRUEGPU_BENCH_STANDARD") != "" {
		names = append(names, "standard")
	}
	for _, name := range names {
		p := mustProfile(b, name)
		b.Run(name, func(b *testing.B) {
			var pk *ProvingKey
			if name == "test" {
				pk, _ = testKeys(b)
			} else {
				var err error
				if pk, _, err = UnsafeDevKeys(p, ""); err != nil {
					b.Fatal(err)
				}
			}
			nonce, node := testNonce(1), testAddress(2)
			tree, err := NewTree(p, Compute(p, nonce))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(pk.Constraints()), "constraints")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := ProveTree(pk, tree, nonce, node, testSeed(4)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnsafeDevSetup(b *testing.B) {
	p := mustProfile(b, "test")
	for i := 0; i < b.N; i++ {
		if _, _, err := unsafeDevSetup(p); err != nil {
			b.Fatal(err)
		}
	}
}
