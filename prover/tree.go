package prover

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Tree is the Poseidon2 Merkle commitment over a result vector C. Leaf word
// w packs cells 4w..4w+3 as Σ_t uint32(C[4w+t])·2^(32t) (a 128-bit field
// element); a parent is H(left, right); the root is the single node at the
// top. Leaves are not hashed: every opening has the profile's fixed depth.
type Tree struct {
	profile *Profile
	// levels[0] are the leaf words; levels[Depth] holds the root.
	levels [][]fr.Element
	cells  []int32
}

// PackWord returns the leaf word of four cells.
func PackWord(cells [CellsPerWord]int32) [32]byte {
	e := packWord(cells[:])
	return e.Bytes()
}

func packWord(cells []int32) fr.Element {
	var limbs [4]uint64 // little-endian 64-bit limbs of the 128-bit word
	limbs[0] = uint64(uint32(cells[0])) | uint64(uint32(cells[1]))<<32
	limbs[1] = uint64(uint32(cells[2])) | uint64(uint32(cells[3]))<<32
	var buf [32]byte
	for i := 0; i < 2; i++ {
		for b := 0; b < 8; b++ {
			buf[31-(8*i+b)] = byte(limbs[i] >> (8 * b))
		}
	}
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes(buf[:]))
	return e
}

// NewTree commits to cells (length M·N, row-major C).
func NewTree(p *Profile, cells []int32) (*Tree, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(cells) != p.Cells() {
		return nil, fmt.Errorf("%w: commitment for %s needs %d cells, got %d", ErrShape, p.ID(), p.Cells(), len(cells))
	}
	depth := p.Depth()
	levels := make([][]fr.Element, depth+1)
	leaves := make([]fr.Element, p.Words())
	parallelFor(len(leaves), func(w int) {
		leaves[w] = packWord(cells[w*CellsPerWord : (w+1)*CellsPerWord])
	})
	levels[0] = leaves
	for d := 1; d <= depth; d++ {
		below := levels[d-1]
		cur := make([]fr.Element, len(below)/2)
		parallelFor(len(cur), func(i int) {
			cur[i] = compress(&below[2*i], &below[2*i+1])
		})
		levels[d] = cur
	}
	return &Tree{profile: p, levels: levels, cells: cells}, nil
}

// Root returns the canonical big-endian encoding of the root.
func (t *Tree) Root() [32]byte { return t.levels[len(t.levels)-1][0].Bytes() }

func (t *Tree) rootElement() fr.Element { return t.levels[len(t.levels)-1][0] }

// Opening is the Merkle opening of one cell: the four cells of its word and
// the siblings from the leaf level up.
type Opening struct {
	Cell     int
	Word     [CellsPerWord]int32
	Siblings [][32]byte
}

// Open returns the opening of cell index c.
func (t *Tree) Open(c int) (*Opening, error) {
	if c < 0 || c >= len(t.cells) {
		return nil, fmt.Errorf("%w: cell %d not in [0, %d)", ErrIndex, c, len(t.cells))
	}
	o := &Opening{Cell: c}
	w := c / CellsPerWord
	copy(o.Word[:], t.cells[w*CellsPerWord:(w+1)*CellsPerWord])
	for d := 0; d < len(t.levels)-1; d++ {
		o.Siblings = append(o.Siblings, t.levels[d][w^1].Bytes())
		w >>= 1
	}
	return o, nil
}

// VerifyOpening recomputes the root from an opening: the four cells are
// packed, then hashed with each sibling (the node is the left input when
// the corresponding bit of the word index is 0).
func VerifyOpening(p *Profile, root [32]byte, o *Opening) bool {
	if o.Cell < 0 || o.Cell >= p.Cells() || len(o.Siblings) != p.Depth() {
		return false
	}
	node := packWord(o.Word[:])
	w := o.Cell / CellsPerWord
	for _, s := range o.Siblings {
		var sib fr.Element
		if err := sib.SetBytesCanonical(s[:]); err != nil {
			return false
		}
		if w&1 == 0 {
			node = compress(&node, &sib)
		} else {
			node = compress(&sib, &node)
		}
		w >>= 1
	}
	return node.Bytes() == root
}
