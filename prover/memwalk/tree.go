package memwalk

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

const (
	tagLeaf  = 0x00
	tagInner = 0x01
	tagPad   = 0x02

	// stateLeafBytes is the size of a walk-tree leaf: eight le64 states.
	stateLeafBytes = LeafLanes * 8
)

// blockHash returns SHA-256(0x00 ‖ be64(i) ‖ block), the table-tree leaf
// hash of block i.
func blockHash(i uint64, block []byte) [32]byte {
	var buf [1 + 8 + BlockBytes]byte
	buf[0] = tagLeaf
	binary.BigEndian.PutUint64(buf[1:9], i)
	copy(buf[9:], block[:BlockBytes])
	return sha256.Sum256(buf[:])
}

// stateHash returns SHA-256(0x00 ‖ be64(n) ‖ le64 states), the walk-tree
// leaf hash of leaf n.
func stateHash(n uint64, states *[LeafLanes]uint64) [32]byte {
	var buf [1 + 8 + stateLeafBytes]byte
	buf[0] = tagLeaf
	binary.BigEndian.PutUint64(buf[1:9], n)
	for k, x := range states {
		binary.LittleEndian.PutUint64(buf[9+8*k:], x)
	}
	return sha256.Sum256(buf[:])
}

func nodeHash(left, right *[32]byte) [32]byte {
	var buf [65]byte
	buf[0] = tagInner
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// padHashes[d] is the hash of a subtree of height d made only of padding
// leaves: padHashes[0] = SHA-256(0x02), padHashes[d+1] = H(pad_d, pad_d).
var padHashes = func() [MaxDepth + 1][32]byte {
	var p [MaxDepth + 1][32]byte
	p[0] = sha256.Sum256([]byte{tagPad})
	for d := 1; d <= MaxDepth; d++ {
		p[d] = nodeHash(&p[d-1], &p[d-1])
	}
	return p
}()

// tree holds every level of a Merkle tree whose leaves are the roots of
// subtrees of height base: levels[0] are those roots, levels[d] has
// ceil(len(levels[d-1])/2) nodes, and nodes past the end of a level are
// padding subtrees (padHashes[base+d]). The table tree has base 0; the
// walk's step tree has base log2(Lanes/8).
type tree struct {
	levels [][][32]byte
	depth  int
	base   int
}

func (t *tree) node(d int, n uint64) [32]byte {
	if n < uint64(len(t.levels[d])) {
		return t.levels[d][n]
	}
	return padHashes[t.base+d]
}

func (t *tree) root() [32]byte { return t.node(t.depth, 0) }

// path returns the sibling hashes of leaf l, bottom-up.
func (t *tree) path(l uint64) [][32]byte {
	p := make([][32]byte, t.depth)
	for d := 0; d < t.depth; d++ {
		p[d] = t.node(d, (l>>d)^1)
	}
	return p
}

// buildTree hashes the levels above the given leaves (subtree roots of
// height base), splitting large levels across workers.
func buildTree(leaves [][32]byte, base, workers int) *tree {
	t := &tree{depth: depthFor(uint64(len(leaves))), base: base}
	t.levels = make([][][32]byte, t.depth+1)
	t.levels[0] = leaves
	for d := 1; d <= t.depth; d++ {
		below := t.levels[d-1]
		cur := make([][32]byte, (len(below)+1)/2)
		pad := padHashes[base+d-1]
		parallelRange(len(cur), workers, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				right := pad
				if 2*n+1 < len(below) {
					right = below[2*n+1]
				}
				cur[n] = nodeHash(&below[2*n], &right)
			}
		})
		t.levels[d] = cur
	}
	return t
}

// reduceRoot replaces h[0] with the root of the complete tree over h (a
// power-of-two count of nodes), overwriting h, and returns it.
func reduceRoot(h [][32]byte) [32]byte {
	for n := len(h); n > 1; n /= 2 {
		for k := 0; k < n/2; k++ {
			h[k] = nodeHash(&h[2*k], &h[2*k+1])
		}
	}
	return h[0]
}

// pathRoot folds a bottom-up path from a leaf hash to the root it implies.
func pathRoot(l uint64, h [32]byte, path [][32]byte) [32]byte {
	for d := range path {
		if (l>>d)&1 == 0 {
			h = nodeHash(&h, &path[d])
		} else {
			h = nodeHash(&path[d], &h)
		}
	}
	return h
}

// parallelRange runs fn over [0, n) split across up to workers goroutines.
func parallelRange(n, workers int, fn func(lo, hi int)) {
	const minPerWorker = 4096
	parallelRangeMin(n, workers, minPerWorker, fn)
}

// parallelRangeMin is parallelRange with at least minPer items per
// goroutine.
func parallelRangeMin(n, workers, minPer int, fn func(lo, hi int)) {
	if workers > n/minPer {
		workers = n / minPer
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
