package verifier_test

import (
	"fmt"
	"testing"

	"github.com/truegpu/truegpu/verifier"
)

func BenchmarkVerify(b *testing.B) {
	f := testFixture(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := verifier.Verify(f.vk, f.proofs[i%len(f.proofs)], f.pubs[i%len(f.pubs)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBatch(b *testing.B) {
	f := testFixture(b)
	for _, n := range []int{4, 16, 64, 256} {
		proofs := make([]*verifier.Proof, n)
		pubs := make([]verifier.PublicInputs, n)
		for i := range proofs {
			proofs[i], pubs[i] = f.proofs[i%len(f.proofs)], f.pubs[i%len(f.pubs)]
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bad, err := verifier.VerifyBatch(f.vk, proofs, pubs)
				if err != nil || len(bad) != 0 {
					b.Fatalf("bad=%v err=%v", bad, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/proof")
		})
	}
	// One tampered proof in 64: the cost of finding it by bisection.
	b.Run("n=64,one-bad", func(b *testing.B) {
		n := 64
		proofs := make([]*verifier.Proof, n)
		pubs := make([]verifier.PublicInputs, n)
		for i := range proofs {
			proofs[i], pubs[i] = f.proofs[i%len(f.proofs)], f.pubs[i%len(f.pubs)]
		}
		bad := *proofs[17]
		bad.C.Add(&bad.C, &bad.A)
		proofs[17] = &bad
		for i := 0; i < b.N; i++ {
			got, err := verifier.VerifyBatch(f.vk, proofs, pubs)
			if err != nil || len(got) != 1 || got[0] != 17 {
				b.Fatalf("bad=%v err=%v", got, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/proof")
	})
}

func BenchmarkDecodeProof(b *testing.B) {
	f := testFixture(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := verifier.DecodeProof(f.raw[i%len(f.raw)]); err != nil {
			b.Fatal(err)
		}
	}
}
