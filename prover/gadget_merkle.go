package prover

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/bits"
)

// The Merkle gadget: the in-circuit counterpart of Tree's leaf packing and
// of VerifyOpening.

// circuitPackWord range-checks the four cells of a leaf word to 32 bits
// each and returns their packing Σ_t cells[t]·2^(32t), the leaf of the
// commitment tree (packWord). With every cell below 2^32 the packing is
// injective, so a leaf has exactly one set of four cells.
func circuitPackWord(api frontend.API, cells [CellsPerWord]frontend.Variable) frontend.Variable {
	var word frontend.Variable = 0
	for t := 0; t < CellsPerWord; t++ {
		bits.ToBinary(api, cells[t], bits.WithNbDigits(32))
		word = api.Add(word, api.Mul(cells[t], new(big.Int).Lsh(big.NewInt(1), uint(32*t))))
	}
	return word
}

// circuitMerkleRoot returns the root that leaf hashes up to along a
// Merkle path: at level d the node is H(node, siblings[d]) when
// indexBits[d] is 0 and H(siblings[d], node) when it is 1, where
// indexBits are the bits of the leaf's word index, least significant
// first. The bits are used as selectors and not checked here: the caller
// must constrain each to 0 or 1 (the circuit takes them from a canonical
// bit decomposition). It panics if the path and the bits differ in
// length.
func circuitMerkleRoot(api frontend.API, h hasher, leaf frontend.Variable, indexBits, siblings []frontend.Variable) frontend.Variable {
	if len(indexBits) != len(siblings) {
		panic(fmt.Sprintf("prover: Merkle path of %d siblings with %d index bits", len(siblings), len(indexBits)))
	}
	node := leaf
	for d, sib := range siblings {
		bit := indexBits[d]
		swap := api.Mul(bit, api.Sub(sib, node))
		left := api.Add(node, swap)
		right := api.Sub(sib, swap)
		node = h(left, right)
	}
	return node
}

// circuitAssertOpening asserts that leaf, at the word index whose bits are
// indexBits (constrained to 0 or 1 by the caller), opens to root with the
// given siblings.
func circuitAssertOpening(api frontend.API, h hasher, root, leaf frontend.Variable, indexBits, siblings []frontend.Variable) {
	api.AssertIsEqual(circuitMerkleRoot(api, h, leaf, indexBits, siblings), root)
}
