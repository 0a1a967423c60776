package prover

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/bits"
	"github.com/consensys/gnark/test"
)

// merkleCircuit checks one opening with the Merkle gadget: the four cells
// of the word at index Index open to Root with Siblings. Index is
// decomposed into Depth bits, as the circuit's sample bits are.
type merkleCircuit struct {
	Root     frontend.Variable `gnark:",public"`
	Index    frontend.Variable
	Word     [CellsPerWord]frontend.Variable
	Siblings []frontend.Variable
}

func newMerkleCircuit(depth int) *merkleCircuit {
	return &merkleCircuit{Siblings: make([]frontend.Variable, depth)}
}

func (c *merkleCircuit) Define(api frontend.API) error {
	h, err := newHasher(api)
	if err != nil {
		return err
	}
	leaf := circuitPackWord(api, c.Word)
	index := bits.ToBinary(api, c.Index, bits.WithNbDigits(len(c.Siblings)))
	circuitAssertOpening(api, h, c.Root, leaf, index, c.Siblings)
	return nil
}

// merkleAssignment assigns an opening as VerifyOpening reads it: the word
// index is the cell's, cells are their uint32 patterns.
func merkleAssignment(root [32]byte, o *Opening) *merkleCircuit {
	c := newMerkleCircuit(len(o.Siblings))
	c.Root = new(big.Int).SetBytes(root[:])
	c.Index = o.Cell / CellsPerWord
	for t := range o.Word {
		c.Word[t] = uint32(o.Word[t])
	}
	for d := range o.Siblings {
		c.Siblings[d] = new(big.Int).SetBytes(o.Siblings[d][:])
	}
	return c
}

func cloneOpening(o *Opening) *Opening {
	c := *o
	c.Siblings = append([][32]byte(nil), o.Siblings...)
	return &c
}

// TestMerkleGadgetOpenings checks the gadget against the native tree:
// every opening of the test profile's tree is accepted, and the gadget's
// root equals Tree.Root for leaves at both ends and in the middle.
func TestMerkleGadgetOpenings(t *testing.T) {
	p := mustProfile(t, "test")
	tree, err := NewTree(p, Compute(p, testNonce(21)))
	if err != nil {
		t.Fatal(err)
	}
	field := ecc.BN254.ScalarField()
	for w := 0; w < p.Words(); w++ {
		o, err := tree.Open(w*CellsPerWord + w%CellsPerWord)
		if err != nil {
			t.Fatal(err)
		}
		if !VerifyOpening(p, tree.Root(), o) {
			t.Fatalf("word %d: native opening rejected", w)
		}
		if err := test.IsSolved(newMerkleCircuit(p.Depth()), merkleAssignment(tree.Root(), o), field); err != nil {
			t.Fatalf("word %d: opening rejected by the gadget: %v", w, err)
		}
	}
}

// TestMerkleGadgetTampering checks that the gadget rejects every opening
// the native VerifyOpening rejects: a changed sibling at each level, the
// opening moved to another word index (one flipped index bit, the
// neighbouring word, the mirror word), a changed cell, a cell out of
// uint32 range with the same packed word, and another root.
func TestMerkleGadgetTampering(t *testing.T) {
	p := mustProfile(t, "test")
	tree, err := NewTree(p, Compute(p, testNonce(22)))
	if err != nil {
		t.Fatal(err)
	}
	const cell = 4*37 + 2 // word 37 = 0b100101: both bit values occur
	o, err := tree.Open(cell)
	if err != nil {
		t.Fatal(err)
	}
	field := ecc.BN254.ScalarField()
	if err := test.IsSolved(newMerkleCircuit(p.Depth()), merkleAssignment(tree.Root(), o), field); err != nil {
		t.Fatalf("valid opening rejected: %v", err)
	}

	type tc struct {
		name string
		edit func(o *Opening) // changes the opening, checked natively too
		post func(c *merkleCircuit)
	}
	var tests []tc
	for d := 0; d < p.Depth(); d++ {
		tests = append(tests, tc{name: fmt.Sprintf("wrong sibling at level %d", d), edit: func(o *Opening) {
			o.Siblings[d][31] ^= 1
		}})
		tests = append(tests, tc{name: fmt.Sprintf("wrong leaf index, bit %d flipped", d), edit: func(o *Opening) {
			o.Cell ^= CellsPerWord << d
		}})
	}
	tests = append(tests,
		tc{name: "wrong leaf index, mirror word", edit: func(o *Opening) {
			o.Cell = (p.Words()-1-o.Cell/CellsPerWord)*CellsPerWord + o.Cell%CellsPerWord
		}},
		tc{name: "siblings in reverse order", edit: func(o *Opening) {
			for i, j := 0, len(o.Siblings)-1; i < j; i, j = i+1, j-1 {
				o.Siblings[i], o.Siblings[j] = o.Siblings[j], o.Siblings[i]
			}
		}},
		tc{name: "wrong cell value", edit: func(o *Opening) { o.Word[1]++ }},
		tc{name: "cell above 2^32 with the same packed word", post: func(c *merkleCircuit) {
			// (v + 2^32, w - 1) packs like (v, w): only the range check
			// tells them apart. w is taken nonzero so w - 1 is a uint32.
			for t := 0; t+1 < CellsPerWord; t++ {
				if w := c.Word[t+1].(uint32); w != 0 {
					v := new(big.Int).SetUint64(uint64(c.Word[t].(uint32)))
					c.Word[t] = v.Add(v, new(big.Int).Lsh(big.NewInt(1), 32))
					c.Word[t+1] = w - 1
					return
				}
			}
			panic("test case error: no nonzero cell to borrow from")
		}},
		tc{name: "wrong root", post: func(c *merkleCircuit) {
			c.Root = new(big.Int).Add(c.Root.(*big.Int), big.NewInt(1))
		}},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := cloneOpening(o)
			if tc.edit != nil {
				tc.edit(bad)
				if VerifyOpening(p, tree.Root(), bad) {
					t.Fatal("test case error: the native check accepts the opening")
				}
			}
			a := merkleAssignment(tree.Root(), bad)
			if tc.post != nil {
				tc.post(a)
			}
			if err := test.IsSolved(newMerkleCircuit(p.Depth()), a, field); err == nil {
				t.Fatal("tampered opening accepted by the gadget")
			}
		})
	}
}

// TestMerkleGadgetIndexBits checks the gadget's order convention with
// explicit bits: bit 0 puts the node on the left, bit 1 on the right,
// at each level, as in VerifyOpening.
func TestMerkleGadgetIndexBits(t *testing.T) {
	field := ecc.BN254.ScalarField()
	leaf, s0, s1 := fromUint64(7), fromUint64(11), fromUint64(13)
	for _, idx := range []int{0, 1, 2, 3} {
		node := leaf
		for d, s := range []fr.Element{s0, s1} {
			if idx>>d&1 == 0 {
				node = compress(&node, &s)
			} else {
				node = compress(&s, &node)
			}
		}
		c := &merkleRootCircuit{Leaf: 7, Root: node.BigInt(new(big.Int)),
			Bits: [2]frontend.Variable{idx & 1, idx >> 1}, Siblings: [2]frontend.Variable{11, 13}}
		if err := test.IsSolved(&merkleRootCircuit{}, c, field); err != nil {
			t.Fatalf("index %d: root of the native order rejected: %v", idx, err)
		}
		c.Bits = [2]frontend.Variable{1 - idx&1, idx >> 1}
		if err := test.IsSolved(&merkleRootCircuit{}, c, field); err == nil {
			t.Fatalf("index %d: root accepted with bit 0 flipped", idx)
		}
	}
}

// merkleRootCircuit compares circuitMerkleRoot on a two-level path with
// explicit index bits to Root.
type merkleRootCircuit struct {
	Leaf, Root frontend.Variable
	Bits       [2]frontend.Variable
	Siblings   [2]frontend.Variable
}

func (c *merkleRootCircuit) Define(api frontend.API) error {
	h, err := newHasher(api)
	if err != nil {
		return err
	}
	for _, b := range c.Bits {
		api.AssertIsBoolean(b)
	}
	api.AssertIsEqual(circuitMerkleRoot(api, h, c.Leaf, c.Bits[:], c.Siblings[:]), c.Root)
	return nil
}
