package verifier

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

func TestScaleByCoefficient(t *testing.T) {
	_, _, g, _ := bn254.Generators()
	var a bn254.G1Affine
	a.ScalarMultiplication(&g, big.NewInt(123456789))
	e := endo()
	for _, c := range [][2]uint64{{1, 0}, {0, 1}, {7, 9}, {^uint64(0), ^uint64(0)}} {
		var rho, r1 fr.Element
		r1.SetUint64(c[0])
		rho.SetUint64(c[1])
		rho.Mul(&rho, &e.lambda).Add(&rho, &r1)
		var want bn254.G1Affine
		want.ScalarMultiplication(&a, rho.BigInt(new(big.Int)))
		jac := scaleByCoefficient(&a, c[0], c[1])
		var got bn254.G1Affine
		got.FromJacobian(&jac)
		if !got.Equal(&want) {
			t.Fatalf("coefficient %v: ρ₁·A + ρ₂·φ(A) != (ρ₁ + λρ₂)·A", c)
		}
	}
}

func BenchmarkCoefficientScaling(b *testing.B) {
	_, _, g, _ := bn254.Generators()
	var a bn254.G1Affine
	a.ScalarMultiplication(&g, big.NewInt(987654321))
	b.Run("128-bit windowed", func(b *testing.B) {
		s := new(big.Int).Lsh(big.NewInt(0x7fffffffffffffff), 64)
		s.Or(s, big.NewInt(0x1234567890abcdef))
		var out bn254.G1Affine
		for i := 0; i < b.N; i++ {
			out.ScalarMultiplication(&a, s)
		}
	})
	b.Run("64+64-bit endomorphism", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = scaleByCoefficient(&a, 0x7fffffffffffffff, 0x1234567890abcdef)
		}
	})
}
