package timed

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
)

const (
	tagLeaf  = 0x00
	tagInner = 0x01
	tagPad   = 0x02
)

// LeafHash returns SHA-256(0x00 ‖ be64(l) ‖ leaf) for leaf index l and its
// LeafCells bytes.
func LeafHash(l uint64, leaf []byte) [32]byte {
	var buf [1 + 8 + LeafCells]byte
	buf[0] = tagLeaf
	binary.BigEndian.PutUint64(buf[1:9], l)
	copy(buf[9:], leaf)
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

// Commit returns the commitment root
// SHA-256("truegpu/timed/v1/root" ‖ be32(M) ‖ be32(N) ‖ be32(K) ‖ nonce ‖ treeRoot).
func Commit(s Spec, nonce [32]byte, treeRoot [32]byte) [32]byte {
	var buf [len(Version) + len("/root") + 12 + 32 + 32]byte
	n := copy(buf[:], Version+"/root")
	binary.BigEndian.PutUint32(buf[n:], s.M)
	binary.BigEndian.PutUint32(buf[n+4:], s.N)
	binary.BigEndian.PutUint32(buf[n+8:], s.K)
	copy(buf[n+12:], nonce[:])
	copy(buf[n+44:], treeRoot[:])
	return sha256.Sum256(buf[:])
}

// SampleCells returns the cells the oracle opens for a commitment root and
// sample seed: for q = 0, 1, 2, …,
// cell = be64(SHA-256("truegpu/timed/v1/sample" ‖ root ‖ seed ‖ be32(q))[0:8]) mod M·N,
// duplicates skipped, until min(Samples, M·N) distinct cells are drawn;
// the result is sorted ascending. An invalid spec yields nil.
func SampleCells(s Spec, root [32]byte, seed [SeedSize]byte) []uint64 {
	if s.Validate() != nil {
		return nil
	}
	cells := s.Cells()
	want := uint64(Samples)
	if cells < want {
		want = cells
	}
	var buf [len(Version) + len("/sample") + 32 + SeedSize + 4]byte
	n := copy(buf[:], Version+"/sample")
	copy(buf[n:], root[:])
	copy(buf[n+32:], seed[:])
	out := make([]uint64, 0, want)
	for q := uint32(0); uint64(len(out)) < want; q++ {
		binary.BigEndian.PutUint32(buf[n+32+SeedSize:], q)
		h := sha256.Sum256(buf[:])
		c := binary.BigEndian.Uint64(h[0:8]) % cells
		dup := false
		for _, x := range out {
			if x == c {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// sampledLeaves returns the distinct leaves holding the given sorted cells.
func sampledLeaves(cells []uint64) []uint64 {
	var out []uint64
	for _, c := range cells {
		l := c / LeafCells
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
	}
	return out
}

// tree holds every level of the Merkle tree: levels[0] are the leaf hashes,
// levels[d] has ceil(len(levels[d-1])/2) nodes, and nodes past the end of a
// level are padding subtrees (padHashes[d]).
type tree struct {
	levels [][][32]byte
	depth  int
}

func (t *tree) node(d int, n uint64) [32]byte {
	if n < uint64(len(t.levels[d])) {
		return t.levels[d][n]
	}
	return padHashes[d]
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

// buildTree hashes the levels above the given leaf hashes, splitting large
// levels across workers.
func buildTree(leaves [][32]byte, workers int) *tree {
	t := &tree{depth: depthFor(uint64(len(leaves)))}
	t.levels = make([][][32]byte, t.depth+1)
	t.levels[0] = leaves
	for d := 1; d <= t.depth; d++ {
		below := t.levels[d-1]
		cur := make([][32]byte, (len(below)+1)/2)
		parallelRange(len(cur), workers, func(lo, hi int) {
			for n := lo; n < hi; n++ {
				left := below[2*n]
				right := padHashes[d-1]
				if 2*n+1 < len(below) {
					right = below[2*n+1]
				}
				cur[n] = nodeHash(&left, &right)
			}
		})
		t.levels[d] = cur
	}
	return t
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
