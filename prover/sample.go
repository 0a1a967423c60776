package prover

import (
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/truegpu/truegpu/verifier"
)

// SampleSeedSize is the size of the oracle's sample seed in bytes (the
// public input's width, verifier.SampleSeedSize).
const SampleSeedSize = verifier.SampleSeedSize

// SampleSeed is the oracle's 128-bit sample seed: fresh randomness the
// oracle's leader draws when it records a node's commitment and returns to
// the node in the commitment's answer. Sample positions depend on it, so a
// node learns which cells it must open only after its root is on record.
type SampleSeed [SampleSeedSize]byte

// seedInput reads the sample seed as a big-endian 128-bit integer.
func seedInput(s SampleSeed) fr.Element {
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes(s[:]))
	return e
}

// SampleIndices returns the Q cell indices a proof must open:
//
//	B   = Chain(TagSample, root, seed, nonceHi, nonceLo, node)
//	h_s = H(B, s)                  for s = 0..Q-1
//	c_s = h_s mod M·N              (the low log2(M·N) bits of h_s)
//
// where seed is the oracle's sample seed for the commitment. Indices are
// drawn with replacement; repeats are allowed. A root that is not a
// canonical field element is reduced modulo r first (a proof for it cannot
// verify anyway: the verifier refuses a non-canonical root).
func SampleIndices(p *Profile, root [32]byte, seed SampleSeed, nonce Nonce, node Address) []int {
	var r fr.Element
	r.SetBytes(root[:])
	return sampleIndices(p, &r, seed, nonce, node)
}

func sampleIndices(p *Profile, root *fr.Element, seed SampleSeed, nonce Nonce, node Address) []int {
	hi, lo := nonceElements(nonce)
	base := chain(tagSample, *root, seedInput(seed), hi, lo, addressElement(node))
	mask := new(big.Int).SetUint64(uint64(p.Cells() - 1))
	out := make([]int, p.Q)
	for s := range out {
		idx := fromUint64(uint64(s))
		h := compress(&base, &idx)
		var hb big.Int
		h.BigInt(&hb)
		out[s] = int(hb.And(&hb, mask).Int64())
	}
	return out
}

// SamplesHit reports whether every cell the proof must open for (root,
// seed, nonce, node) is one of the computed cells (computed reports which
// are). A node that computed a fraction f of the cells finds this true
// with probability f^Q over the seed.
func SamplesHit(p *Profile, root [32]byte, seed SampleSeed, nonce Nonce, node Address, computed func(cell int) bool) bool {
	for _, c := range SampleIndices(p, root, seed, nonce, node) {
		if !computed(c) {
			return false
		}
	}
	return true
}
