// Package sha256tree is the SHA-256 Merkle tree that commits the timed
// phase (prover/timed) and both trees of the memory phase (prover/memwalk).
// Those packages' documentation is the normative specification; this
// package implements the construction they share:
//
//	leaf hash    = SHA-256(0x00 ‖ be64(index) ‖ leaf bytes)
//	padding leaf = SHA-256(0x02)
//	inner node   = SHA-256(0x01 ‖ left ‖ right)
//
// A tree over L leaves has P leaves, P the smallest power of two ≥ L,
// leaves L … P−1 being padding leaves (with L = 1 the root is the leaf
// hash). A path is the log2(P) sibling hashes of a leaf, bottom-up; at
// height d the node is on the left when bit d of the leaf index is 0.
package sha256tree

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/truegpu/truegpu/internal/parallel"
)

const (
	tagLeaf  = 0x00
	tagInner = 0x01
	tagPad   = 0x02

	// headerSize is the size of a leaf's tag and be64 index.
	headerSize = 1 + 8
	// minNodesPerWorker is the smallest share of a level's nodes a
	// goroutine hashes when a tree is built.
	minNodesPerWorker = 4096
)

// MaxHeight is the largest subtree height PadHash accepts (a tree of 2^64
// leaves).
const MaxHeight = 64

// LeafHash returns SHA-256(0x00 ‖ be64(index) ‖ leaf).
func LeafHash(index uint64, leaf []byte) [32]byte {
	// Short leaves are hashed from a stack buffer sized to them.
	switch n := len(leaf); {
	case n <= 64:
		var buf [headerSize + 64]byte
		return sumLeaf(buf[:headerSize+n], index, leaf)
	case n <= 256:
		var buf [headerSize + 256]byte
		return sumLeaf(buf[:headerSize+n], index, leaf)
	case n <= 1024:
		var buf [headerSize + 1024]byte
		return sumLeaf(buf[:headerSize+n], index, leaf)
	}
	var hdr [headerSize]byte
	hdr[0] = tagLeaf
	binary.BigEndian.PutUint64(hdr[1:], index)
	h := sha256.New()
	h.Write(hdr[:])
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// sumLeaf hashes 0x00 ‖ be64(index) ‖ leaf from buf, which has room for
// exactly that.
func sumLeaf(buf []byte, index uint64, leaf []byte) [32]byte {
	buf[0] = tagLeaf
	binary.BigEndian.PutUint64(buf[1:headerSize], index)
	copy(buf[headerSize:], leaf)
	return sha256.Sum256(buf)
}

// Node returns the inner node SHA-256(0x01 ‖ left ‖ right).
func Node(left, right [32]byte) [32]byte {
	var buf [1 + 32 + 32]byte
	buf[0] = tagInner
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// padHashes[d] is the root of a subtree of height d made only of padding
// leaves.
var padHashes = func() [MaxHeight + 1][32]byte {
	var p [MaxHeight + 1][32]byte
	p[0] = sha256.Sum256([]byte{tagPad})
	for d := 1; d <= MaxHeight; d++ {
		p[d] = Node(p[d-1], p[d-1])
	}
	return p
}()

// PadHash returns the root of a subtree of the given height made only of
// padding leaves: PadHash(0) = SHA-256(0x02), PadHash(d+1) =
// Node(PadHash(d), PadHash(d)). It panics when height is outside
// [0, MaxHeight].
func PadHash(height int) [32]byte { return padHashes[height] }

// Depth returns log2(P), the path length of a tree over the given number
// of leaves (0 for at most one leaf).
func Depth(leaves uint64) int {
	if leaves <= 1 {
		return 0
	}
	return bits.Len64(leaves - 1)
}

// Tree holds every level of a tree: level 0 are its leaves, level d+1 has
// ⌈n/2⌉ nodes for the n of level d, up to the single root. Nodes past the
// end of a level are padding subtrees. The leaves may themselves be roots
// of complete subtrees of a common height (BuildOver). A Tree is read-only
// once built and safe for concurrent use.
type Tree struct {
	levels [][][32]byte
	base   int
}

// Build returns the tree over the given leaf hashes, in leaf order,
// hashing large levels on up to workers goroutines (runtime.GOMAXPROCS
// when workers ≤ 0). The tree keeps leaves as its level 0 (not a copy).
func Build(leaves [][32]byte, workers int) *Tree {
	return BuildOver(leaves, 0, workers)
}

// BuildOver is Build for leaves that are the roots of complete subtrees
// of the given height (the tree's padding subtrees at level d then have
// height+d), so that its root and paths are those of the tree over all of
// the subtrees' leaves, its paths being the upper part. It panics when the
// tree would exceed MaxHeight.
func BuildOver(roots [][32]byte, height, workers int) *Tree {
	depth := Depth(uint64(len(roots)))
	if height < 0 || height+depth > MaxHeight {
		panic(fmt.Sprintf("sha256tree: %d subtrees of height %d exceed height %d", len(roots), height, MaxHeight))
	}
	t := &Tree{levels: make([][][32]byte, depth+1), base: height}
	t.levels[0] = roots
	for d := 1; d <= depth; d++ {
		below := t.levels[d-1]
		cur := make([][32]byte, (len(below)+1)/2)
		pad := padHashes[height+d-1]
		parallel.Range(len(cur), workers, minNodesPerWorker, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				right := pad
				if 2*n+1 < len(below) {
					right = below[2*n+1]
				}
				cur[n] = Node(below[2*n], right)
			}
		})
		t.levels[d] = cur
	}
	return t
}

// FromLevels returns the tree whose levels were hashed elsewhere (for
// example on a device): levels[0] the leaf hashes, each further level
// ⌈n/2⌉ nodes for the n of the level below, the last one the root. Only
// the shape is checked; the hashes are kept as they are (not copies).
func FromLevels(levels [][][32]byte) (*Tree, error) {
	if len(levels) == 0 || len(levels)-1 > MaxHeight {
		return nil, fmt.Errorf("sha256tree: %d levels", len(levels))
	}
	for d := 1; d < len(levels); d++ {
		if want := (len(levels[d-1]) + 1) / 2; len(levels[d]) != want {
			return nil, fmt.Errorf("sha256tree: level %d has %d nodes, want %d", d, len(levels[d]), want)
		}
	}
	if want := Depth(uint64(len(levels[0]))); len(levels)-1 != want {
		return nil, fmt.Errorf("sha256tree: %d levels above %d leaves, want %d", len(levels)-1, len(levels[0]), want)
	}
	return &Tree{levels: levels}, nil
}

// node returns node n of level d, a padding subtree past the level's end.
func (t *Tree) node(d int, n uint64) [32]byte {
	if n < uint64(len(t.levels[d])) {
		return t.levels[d][n]
	}
	return padHashes[t.base+d]
}

// Len returns the number of leaves (padding leaves excluded).
func (t *Tree) Len() int { return len(t.levels[0]) }

// Depth returns the path length log2(P).
func (t *Tree) Depth() int { return len(t.levels) - 1 }

// Leaf returns leaf i's hash (i < Len()).
func (t *Tree) Leaf(i uint64) [32]byte { return t.levels[0][i] }

// Root returns the tree's root.
func (t *Tree) Root() [32]byte { return t.node(t.Depth(), 0) }

// Path returns the Depth() sibling hashes of leaf i, bottom-up.
func (t *Tree) Path(i uint64) [][32]byte {
	p := make([][32]byte, t.Depth())
	for d := range p {
		p[d] = t.node(d, (i>>d)^1)
	}
	return p
}

// PathRoot returns the root that a bottom-up path implies for leaf i with
// hash leaf: at height d the running hash is the left child when bit d of
// i is 0. A path verifies when it has the tree's depth and PathRoot gives
// the tree's root.
func PathRoot(i uint64, leaf [32]byte, path [][32]byte) [32]byte {
	h := leaf
	for d := range path {
		if (i>>d)&1 == 0 {
			h = Node(h, path[d])
		} else {
			h = Node(path[d], h)
		}
	}
	return h
}

// ReduceRoot returns the root of the complete tree whose leaves are
// nodes, a power-of-two count of hashes in leaf order, overwriting nodes
// with the levels above them. It panics when the count is not a power of
// two.
func ReduceRoot(nodes [][32]byte) [32]byte {
	if len(nodes) == 0 || len(nodes)&(len(nodes)-1) != 0 {
		panic(fmt.Sprintf("sha256tree: ReduceRoot of %d nodes", len(nodes)))
	}
	for n := len(nodes); n > 1; n /= 2 {
		for k := 0; k < n/2; k++ {
			nodes[k] = Node(nodes[2*k], nodes[2*k+1])
		}
	}
	return nodes[0]
}
