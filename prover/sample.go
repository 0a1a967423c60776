package prover

import (
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// SampleIndices returns the Q cell indices a proof must open, derived by
// Fiat-Shamir from the commitment:
//
//	B   = Chain(TagSample, root, nonceHi, nonceLo, node)
//	h_s = H(B, s)                  for s = 0..Q-1
//	c_s = h_s mod M·N              (the low log2(M·N) bits of h_s)
//
// Indices are drawn with replacement; repeats are allowed. A root that is
// not a canonical field element is reduced modulo r first (a proof for it
// cannot verify anyway).
func SampleIndices(p *Profile, root [32]byte, nonce Nonce, node Address) []int {
	var r fr.Element
	r.SetBytes(root[:])
	return sampleIndices(p, &r, nonce, node)
}

func sampleIndices(p *Profile, root *fr.Element, nonce Nonce, node Address) []int {
	hi, lo := nonceElements(nonce)
	base := chain(tagSample, *root, hi, lo, addressElement(node))
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
