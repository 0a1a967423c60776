package timed

import (
	"context"
	"fmt"
	"runtime"

	"github.com/truegpu/truegpu/internal/int8gemm"
	"github.com/truegpu/truegpu/internal/parallel"
	"github.com/truegpu/truegpu/internal/sha256tree"
)

const (
	// tileRows is the number of rows of A per tile (an even number: rows
	// are processed in packed pairs).
	tileRows = 16
	// kChunk is the K-blocking step of the inner product.
	kChunk = 1024
	// maxComputeLeaves bounds the reference compute's leaf-hash storage.
	maxComputeLeaves = 1 << 32
)

// keepBytesLimit is the largest M·N for which a Result keeps every leaf's
// bytes; above it Open recomputes the opened leaves from the spec.
var keepBytesLimit uint64 = 64 << 20

// Result is a committed timed-phase result: every leaf hash and every level
// of the Merkle tree, and, for results of at most 64 MiB, the leaf bytes.
type Result struct {
	spec      Spec
	nonce     [32]byte
	keys      [4]uint64
	tree      *sha256tree.Tree
	treeRoot  [32]byte
	root      [32]byte
	bytes     []byte
	leafBytes func(l uint64) ([]byte, error)
}

// Spec returns the result's spec.
func (r *Result) Spec() Spec { return r.spec }

// TreeRoot returns the Merkle root over the leaves.
func (r *Result) TreeRoot() [32]byte { return r.treeRoot }

// Root returns the commitment root Commit(spec, nonce, TreeRoot()).
func (r *Result) Root() [32]byte { return r.root }

// LeafBytes returns the LeafCells committed bytes of leaf l.
func (r *Result) LeafBytes(l uint64) ([]byte, error) {
	if l >= r.spec.Leaves() {
		return nil, fmt.Errorf("timed: leaf %d out of range (%d leaves)", l, r.spec.Leaves())
	}
	if r.bytes != nil {
		out := make([]byte, LeafCells)
		copy(out, r.bytes[l*LeafCells:])
		return out, nil
	}
	if r.leafBytes != nil {
		b, err := r.leafBytes(l)
		if err != nil {
			return nil, fmt.Errorf("timed: bytes of leaf %d: %w", l, err)
		}
		if len(b) != LeafCells {
			return nil, fmt.Errorf("timed: leaf %d has %d bytes, want %d", l, len(b), LeafCells)
		}
		return b, nil
	}
	return recomputeLeaf(r.spec, r.keys, l), nil
}

// Open returns the encoded openings that answer seed: one opening per
// distinct leaf holding a cell of SampleCells(Spec(), Root(), seed), in
// ascending leaf order.
func (r *Result) Open(seed [SeedSize]byte) ([]byte, error) {
	cells := SampleCells(r.spec, r.root, seed)
	o := &Openings{TreeRoot: r.treeRoot}
	for _, l := range sampledLeaves(cells) {
		b, err := r.LeafBytes(l)
		if err != nil {
			return nil, err
		}
		if LeafHash(l, b) != r.tree.Leaf(l) {
			return nil, fmt.Errorf("timed: bytes of leaf %d do not match its committed hash", l)
		}
		op := Opening{Leaf: l, Path: r.tree.Path(l)}
		copy(op.Bytes[:], b)
		o.Leaves = append(o.Leaves, op)
	}
	return o.Encode(), nil
}

// NewResultFromLeaves builds a Result from leaf hashes computed elsewhere
// (for example on a device), in leaf order; it keeps leafHashes. leafBytes
// supplies a leaf's bytes when Open needs them; when nil, the bytes are
// recomputed natively from the spec.
func NewResultFromLeaves(s Spec, nonce [32]byte, leafHashes [][32]byte, leafBytes func(l uint64) ([]byte, error)) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if uint64(len(leafHashes)) != s.Leaves() {
		return nil, fmt.Errorf("timed: %d leaf hashes for a spec with %d leaves", len(leafHashes), s.Leaves())
	}
	return newResult(s, nonce, leafHashes, nil, leafBytes, runtime.GOMAXPROCS(0)), nil
}

func newResult(s Spec, nonce [32]byte, leafHashes [][32]byte, bytes []byte, leafBytes func(uint64) ([]byte, error), workers int) *Result {
	t := sha256tree.Build(leafHashes, workers)
	r := &Result{spec: s, nonce: nonce, keys: Key(nonce), tree: t, treeRoot: t.Root(), bytes: bytes, leafBytes: leafBytes}
	r.root = Commit(s, nonce, r.treeRoot)
	return r
}

// Compute runs the timed GEMM for s and nonce on workers goroutines
// (runtime.GOMAXPROCS when workers ≤ 0) and commits to it. It works in
// tiles of 16 rows by one leaf width of columns and stops between tiles
// when ctx is done.
func Compute(ctx context.Context, s Spec, nonce [32]byte, workers int) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Leaves() > maxComputeLeaves {
		return nil, fmt.Errorf("timed: %d leaves are too many for the reference compute", s.Leaves())
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	nCB := uint64(s.N / LeafCells)
	nRB := (uint64(s.M) + tileRows - 1) / tileRows
	items := nCB * nRB
	if uint64(workers) > items {
		workers = int(items)
	}
	keys := Key(nonce)
	leafHashes := make([][32]byte, s.Leaves())
	var bytes []byte
	if s.Cells() <= keepBytesLimit {
		bytes = make([]byte, s.Cells())
	}
	err := parallel.Items(ctx, items, workers, func() func(uint64) {
		t := newTiler(s, keys)
		return func(it uint64) { t.run(it/nRB, it%nRB, leafHashes, bytes) }
	})
	if err != nil {
		return nil, fmt.Errorf("timed: compute stopped: %w", err)
	}
	return newResult(s, nonce, leafHashes, bytes, nil, workers), nil
}

// tiler is one worker's scratch: the B panel of the current column block
// (256 columns, column-major), the packed A rows of the current tile and
// the accumulators.
type tiler struct {
	s      Spec
	keys   [4]uint64
	k      int
	cb     uint64
	bPanel []int8
	row    []int8
	a2     []int64
	acc    [tileRows / 2][LeafCells]int64
	leaf   [LeafCells]byte
}

func newTiler(s Spec, keys [4]uint64) *tiler {
	k := int(s.K)
	return &tiler{
		s: s, keys: keys, k: k, cb: ^uint64(0),
		bPanel: make([]int8, LeafCells*k),
		row:    make([]int8, 2*k),
		a2:     make([]int64, tileRows/2*k),
	}
}

// run computes the tile of column block cb and row block rb and stores its
// leaf hashes (and bytes when bytes is non-nil).
func (t *tiler) run(cb, rb uint64, leafHashes [][32]byte, bytes []byte) {
	s, k := t.s, t.k
	if cb != t.cb {
		for c := 0; c < LeafCells; c++ {
			ColB(s, t.keys, uint32(cb*LeafCells)+uint32(c), t.bPanel[c*k:(c+1)*k])
		}
		t.cb = cb
	}
	r0 := uint32(rb * tileRows)
	rows := uint32(tileRows)
	if s.M-r0 < rows {
		rows = s.M - r0
	}
	pairs := int(rows+1) / 2
	for p := 0; p < pairs; p++ {
		lo, hi := t.row[:k], t.row[k:2*k]
		RowA(s, t.keys, r0+uint32(2*p), lo)
		if uint32(2*p+1) < rows {
			RowA(s, t.keys, r0+uint32(2*p+1), hi)
		} else {
			clear(hi)
		}
		// A row's sums are bounded by 128·128·65536 = 2^30 in
		// magnitude, so a packed pair holds both exactly.
		int8gemm.PackPair(t.a2[p*k:(p+1)*k], lo, hi)
		clear(t.acc[p][:])
	}
	for k0 := 0; k0 < k; k0 += kChunk {
		k1 := min(k0+kChunk, k)
		for p := 0; p < pairs; p++ {
			a := t.a2[p*k+k0 : p*k+k1]
			acc := &t.acc[p]
			for c := 0; c < LeafCells; c += 4 {
				s0, s1, s2, s3 := int8gemm.Dot4(a,
					t.bPanel[c*k+k0:c*k+k1],
					t.bPanel[(c+1)*k+k0:(c+1)*k+k1],
					t.bPanel[(c+2)*k+k0:(c+2)*k+k1],
					t.bPanel[(c+3)*k+k0:(c+3)*k+k1])
				acc[c] += s0
				acc[c+1] += s1
				acc[c+2] += s2
				acc[c+3] += s3
			}
		}
	}
	nCB := uint64(s.N / LeafCells)
	for r := uint32(0); r < rows; r++ {
		acc := &t.acc[r/2]
		for c := range t.leaf {
			lo, hi := int8gemm.UnpackPair(acc[c])
			if r%2 == 0 {
				t.leaf[c] = uint8(lo)
			} else {
				t.leaf[c] = uint8(hi)
			}
		}
		l := uint64(r0+r)*nCB + cb
		leafHashes[l] = LeafHash(l, t.leaf[:])
		if bytes != nil {
			copy(bytes[l*LeafCells:], t.leaf[:])
		}
	}
}

// recomputeLeaf recomputes the bytes of leaf l natively.
func recomputeLeaf(s Spec, keys [4]uint64, l uint64) []byte {
	nCB := uint64(s.N / LeafCells)
	i := uint32(l / nCB)
	j0 := uint32(l%nCB) * LeafCells
	a := make([]int8, s.K)
	b := make([]int8, s.K)
	RowA(s, keys, i, a)
	out := make([]byte, LeafCells)
	for c := range out {
		ColB(s, keys, j0+uint32(c), b)
		var acc int64
		for k := range a {
			acc += int64(a[k]) * int64(b[k])
		}
		out[c] = uint8(acc)
	}
	return out
}
