package memwalk

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// productionSpec is the memory phase of an H100-class device: a 68 GiB
// table and 2^20 lanes of 9000 steps.
var productionSpec = Spec{Blocks: 68 << 20, Lanes: 1 << 20, Steps: 9000}

// sparseTree is a Merkle tree of the given depth in which only some leaves
// are set; every other subtree is a padding subtree.
type sparseTree struct {
	levels []map[uint64][32]byte
}

func newSparseTree(depth int, leaves map[uint64][32]byte) *sparseTree {
	t := &sparseTree{levels: []map[uint64][32]byte{leaves}}
	for d := 0; d < depth; d++ {
		up := make(map[uint64][32]byte)
		for n := range t.levels[d] {
			l, r := t.node(d, n&^1), t.node(d, n|1)
			up[n>>1] = sha256tree.Node(l, r)
		}
		t.levels = append(t.levels, up)
	}
	return t
}

func (t *sparseTree) node(d int, n uint64) [32]byte {
	if h, ok := t.levels[d][n]; ok {
		return h
	}
	return sha256tree.PadHash(d)
}

func (t *sparseTree) root() [32]byte { return t.node(len(t.levels)-1, 0) }

func (t *sparseTree) path(l uint64) [][32]byte {
	p := make([][32]byte, len(t.levels)-1)
	for d := range p {
		p[d] = t.node(d, (l>>d)^1)
	}
	return p
}

// syntheticOpenings builds openings of the production shape whose every
// check passes verifyChecks: real blocks and folds at random before-states,
// walk and table paths of the production depths in sparse trees. The
// walk root the checks are drawn from cannot also commit to the walk tree
// (it would have to be a fixed point of SHA-256), so the benchmark draws
// the checks from it and then runs the rest of Verify's work.
func syntheticOpenings(tb testing.TB, s Spec, nonce [32]byte, walkSeed, checkSeed [SeedSize]byte) (blob []byte, tableRoot, walkRoot [32]byte, checks []Check) {
	r := rand.New(rand.NewPCG(21, 22))
	for q := 0; ; q++ {
		walkRoot = sha256.Sum256([]byte(fmt.Sprint("synthetic walk root ", q)))
		checks = DrawChecks(s, walkRoot, checkSeed)
		zero := false
		for _, c := range checks {
			zero = zero || c.Step == 0 // a step-0 state depends on tableRoot
		}
		if !zero {
			break
		}
	}
	keys := tableKeys(nonce)
	groups := s.groups()
	blocks := make(map[uint64][]byte)
	blockLeaves := make(map[uint64][32]byte)
	states := make(map[uint64]*[LeafLanes]uint64)
	leafStates := func(n uint64) *[LeafLanes]uint64 {
		if st, ok := states[n]; ok {
			return st
		}
		st := new([LeafLanes]uint64)
		for k := range st {
			st[k] = r.Uint64()
		}
		states[n] = st
		return st
	}
	addr := make([]uint64, len(checks))
	for i, c := range checks {
		g := uint64(c.Lane / LeafLanes)
		x := r.Uint64()
		leafStates(uint64(c.Step-1)*groups + g)[c.Lane%LeafLanes] = x
		a := Address(x, s.Blocks)
		addr[i] = a
		if blocks[a] == nil {
			blocks[a] = make([]byte, BlockBytes)
			Block(s, keys, a, blocks[a])
			blockLeaves[a] = blockHash(a, blocks[a])
		}
		leafStates(uint64(c.Step)*groups + g)[c.Lane%LeafLanes] = Fold(x, blocks[a])
	}
	walkLeaves := make(map[uint64][32]byte)
	for n, st := range states {
		walkLeaves[n] = stateHash(n, st)
	}
	tt := newSparseTree(s.tableDepth(), blockLeaves)
	wt := newSparseTree(s.walkDepth(), walkLeaves)
	o := &Openings{TableTreeRoot: tt.root(), WalkTreeRoot: wt.root()}
	leaf := func(n uint64) *StateLeaf { return &StateLeaf{States: *states[n], Path: wt.path(n)} }
	for i, c := range checks {
		g := uint64(c.Lane / LeafLanes)
		o.Checks = append(o.Checks, CheckOpening{
			Block:     blocks[addr[i]],
			BlockPath: tt.path(addr[i]),
			Before:    leaf(uint64(c.Step-1)*groups + g),
			After:     leaf(uint64(c.Step)*groups + g),
		})
	}
	tableRoot = TableCommit(s, nonce, o.TableTreeRoot)
	blob = o.Encode()
	if err := verifyWork(s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, blob, checks); err != nil {
		tb.Fatalf("synthetic openings do not verify: %v", err)
	}
	return blob, tableRoot, walkRoot, checks
}

// verifyWork is Verify's work with the checks supplied: it decodes,
// recomputes both commitments (the walk commitment is computed but, as
// explained at syntheticOpenings, not compared), draws the checks and
// verifies every one of them.
func verifyWork(s Spec, nonce, tableRoot [32]byte, walkSeed [SeedSize]byte, walkRoot [32]byte, checkSeed [SeedSize]byte, blob []byte, checks []Check) error {
	if err := s.Validate(); err != nil {
		return err
	}
	o, err := DecodeOpenings(blob)
	if err != nil {
		return err
	}
	if TableCommit(s, nonce, o.TableTreeRoot) != tableRoot {
		return ErrRootMismatch
	}
	if WalkCommit(s, nonce, tableRoot, walkSeed, o.WalkTreeRoot) == walkRoot {
		return fmt.Errorf("synthetic walk root is a fixed point")
	}
	drawn := DrawChecks(s, walkRoot, checkSeed)
	if len(drawn) != len(o.Checks) || drawn[0] != checks[0] {
		return ErrMalformed
	}
	return verifyChecks(s, nonce, tableRoot, walkSeed, o, drawn)
}

// BenchmarkVerify measures the oracle's whole verification of 16 checks
// at the production spec and reports the openings size and the cost per
// check.
func BenchmarkVerify(b *testing.B) {
	s := productionSpec
	nonce, walkSeed, checkSeed := [32]byte{1}, [SeedSize]byte{2}, [SeedSize]byte{3}
	blob, tableRoot, walkRoot, checks := syntheticOpenings(b, s, nonce, walkSeed, checkSeed)
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyWork(s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, blob, checks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blob)), "openings-bytes")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(checks)), "ns/check")
}

// BenchmarkFillByte measures one regenerated table byte (a FillK-long int8
// dot product with its generator words).
func BenchmarkFillByte(b *testing.B) {
	keys := tableKeys([32]byte{4})
	var sink byte
	i := uint64(0)
	for b.Loop() {
		sink ^= FillByte(keys, i*7919%(68<<20), uint32(i%BlockBytes))
		i++
	}
	_ = sink
}

// BenchmarkFold measures one fold of a 1 KiB block into a state.
func BenchmarkFold(b *testing.B) {
	block := make([]byte, BlockBytes)
	randBytes(rand.New(rand.NewPCG(1, 1)), block)
	x := uint64(1)
	b.SetBytes(BlockBytes)
	for b.Loop() {
		x = Fold(x, block)
	}
	_ = x
}

// BenchmarkPath measures one Merkle verification at the production
// depths: a block leaf with a table path, and a state leaf with a walk
// path.
func BenchmarkPath(b *testing.B) {
	s := productionSpec
	block := make([]byte, BlockBytes)
	path := make([][32]byte, MaxDepth)
	b.Run(fmt.Sprintf("table-depth=%d", s.tableDepth()), func(b *testing.B) {
		var sink [32]byte
		for b.Loop() {
			sink = sha256tree.PathRoot(12345, blockHash(12345, block), path[:s.tableDepth()])
		}
		_ = sink
	})
	b.Run(fmt.Sprintf("walk-depth=%d", s.walkDepth()), func(b *testing.B) {
		var st [LeafLanes]uint64
		var sink [32]byte
		for b.Loop() {
			sink = sha256tree.PathRoot(12345, stateHash(12345, &st), path[:s.walkDepth()])
		}
		_ = sink
	})
}

// BenchmarkFill reports the reference fill's rate in table bytes per
// second and in GMAC/s (FillK int8 multiply-adds per byte).
func BenchmarkFill(b *testing.B) {
	s := Spec{Blocks: 256, Lanes: 8, Steps: 1}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(int64(s.TableBytes()))
			for b.Loop() {
				if _, err := Fill(context.Background(), s, [32]byte{1}, workers); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.TableBytes())*FillK*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// BenchmarkWalk reports the reference walk's rate in block bytes folded
// per second (Lanes·Steps·1024 per walk, leaf hashing and tree included).
func BenchmarkWalk(b *testing.B) {
	s := Spec{Blocks: 1024, Lanes: 1024, Steps: 64}
	tab := mustFill(b, s, [32]byte{1}, 0)
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(int64(s.Reads() * BlockBytes))
			for b.Loop() {
				if _, err := tab.Walk(context.Background(), [SeedSize]byte{2}, workers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures opening 16 checks of the BenchmarkWalk walk
// (replaying the opened steps from the checkpoints).
func BenchmarkOpen(b *testing.B) {
	s := Spec{Blocks: 1024, Lanes: 1024, Steps: 64}
	tab := mustFill(b, s, [32]byte{1}, 0)
	w := mustWalk(b, tab, [SeedSize]byte{2}, 0)
	q := 0
	for b.Loop() {
		if _, err := w.Open([SeedSize]byte{byte(q), byte(q >> 8)}); err != nil {
			b.Fatal(err)
		}
		q++
	}
}
