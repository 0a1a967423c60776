package verifier

import (
	"math/big"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// BN254's G1 has the endomorphism φ(x, y) = (β·x, y), β a cube root of
// unity in Fp, which acts as multiplication by a cube root of unity λ in
// Fr. Batch coefficients are drawn as ρ = ρ₁ + λ·ρ₂ with random 64-bit
// ρ₁, ρ₂: ρ·A = ρ₁·A + ρ₂·φ(A) costs a 64-bit joint multiplication instead
// of a 128-bit one, and ρ still takes 2¹²⁸ distinct values (the lattice of
// (a, b) with a + λ·b ≡ 0 has no vectors shorter than about 2¹²⁷), so the
// soundness error of a batch stays at most 2⁻¹²⁸.

type endomorphism struct {
	beta   fp.Element
	lambda fr.Element
}

var endo = sync.OnceValue(func() endomorphism {
	// β = g^((p-1)/3) and λ = h^((r-1)/3) for small non-cubes g, h; then
	// pick the λ (or λ²) that matches β on the generator.
	cubeRoot := func(mod *big.Int) *big.Int {
		e := new(big.Int).Sub(mod, big.NewInt(1))
		e.Div(e, big.NewInt(3))
		for g := int64(2); ; g++ {
			w := new(big.Int).Exp(big.NewInt(g), e, mod)
			if w.Cmp(big.NewInt(1)) != 0 {
				return w
			}
		}
	}
	var beta fp.Element
	beta.SetBigInt(cubeRoot(fp.Modulus()))
	var lambda fr.Element
	lambda.SetBigInt(cubeRoot(fr.Modulus()))
	_, _, g1, _ := bn254.Generators()
	phiG := g1
	phiG.X.Mul(&phiG.X, &beta)
	var b big.Int
	for i := 0; i < 2; i++ {
		var lg bn254.G1Affine
		lg.ScalarMultiplication(&g1, lambda.BigInt(&b))
		if lg.Equal(&phiG) {
			return endomorphism{beta: beta, lambda: lambda}
		}
		lambda.Square(&lambda) // the other primitive cube root
	}
	panic("verifier: no cube root of unity matches the G1 endomorphism")
})

// scaleByCoefficient returns ρ·a for ρ = ρ₁ + λ·ρ₂, in Jacobian form.
func scaleByCoefficient(a *bn254.G1Affine, r1, r2 uint64) bn254.G1Jac {
	phiA := *a
	e := endo()
	phiA.X.Mul(&phiA.X, &e.beta)
	var out bn254.G1Jac
	out.JointScalarMultiplication(a, &phiA, new(big.Int).SetUint64(r1), new(big.Int).SetUint64(r2))
	return out
}
