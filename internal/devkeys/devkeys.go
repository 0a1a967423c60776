// Package devkeys recognises the verifying keys of the UNSAFE
// deterministic dev setup (prover.UnsafeDevSetup, `truegpuctl setup
// -unsafe-dev`), whose Groth16 trapdoor anyone can recompute: a member
// must not verify real work under such a key.
//
// Recognition costs a few scalar multiplications, not a setup: the dev
// setup derives each trapdoor value from a public label and the profile
// id, and publishes α·G1, γ·G2 and δ·G2 in the verifying key. A key that
// holds any of those points for any profile came from that trapdoor.
package devkeys

import (
	"crypto/sha256"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// unsafeDevLabel is the public label prover.UnsafeDevSetup derives its
// trapdoor from (with " " and the profile id appended); TestRecognisesDevSetup
// fails if the two drift apart.
const unsafeDevLabel = "truegpu UNSAFE deterministic dev setup v1: toxic waste is public"

// derive is the dev setup's derivation of one trapdoor value:
// SHA-256(name | label | counter) reduced mod r, skipping zero.
func derive(name, label string) fr.Element {
	for ctr := byte(0); ; ctr++ {
		h := sha256.Sum256(append([]byte(name+"|"+label+"|"), ctr))
		var e fr.Element
		e.SetBytes(h[:])
		if !e.IsZero() {
			return e
		}
	}
}

// IsUnsafeDev reports whether vk comes from the dev setup of one of the
// known profiles (prover.Profiles()), and of which one.
func IsUnsafeDev(vk *verifier.VerifyingKey) (profileID string, ok bool) {
	if vk == nil {
		return "", false
	}
	for _, p := range prover.Profiles() {
		if matches(vk, unsafeDevLabel+" "+p.ID()) {
			return p.ID(), true
		}
	}
	return "", false
}

func matches(vk *verifier.VerifyingKey, label string) bool {
	_, _, g1, g2 := bn254.Generators()
	scalar := func(name string) *big.Int {
		e := derive(name, label)
		return e.BigInt(new(big.Int))
	}
	var alpha bn254.G1Affine
	alpha.ScalarMultiplication(&g1, scalar("alpha"))
	var gamma, delta bn254.G2Affine
	gamma.ScalarMultiplication(&g2, scalar("gamma"))
	delta.ScalarMultiplication(&g2, scalar("delta"))
	return vk.Alpha.Equal(&alpha) || vk.Gamma.Equal(&gamma) || vk.Delta.Equal(&delta)
}
