package sha256tree

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The straight-line reference below is a transcription of the package
// documentation: every leaf padded to P, every level built in full.

func refLeaf(i uint64, leaf []byte) [32]byte {
	buf := binary.BigEndian.AppendUint64([]byte{0x00}, i)
	return sha256.Sum256(append(buf, leaf...))
}

func refNode(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
}

// refLevels returns every level of the tree over leaves padded to a power
// of two.
func refLevels(leaves [][32]byte) [][][32]byte {
	level := slices.Clone(leaves)
	for len(level) == 0 || len(level)&(len(level)-1) != 0 {
		level = append(level, sha256.Sum256([]byte{0x02}))
	}
	levels := [][][32]byte{level}
	for len(level) > 1 {
		var up [][32]byte
		for n := 0; n < len(level); n += 2 {
			up = append(up, refNode(level[n], level[n+1]))
		}
		level = up
		levels = append(levels, level)
	}
	return levels
}

func refPath(levels [][][32]byte, i uint64) [][32]byte {
	p := [][32]byte{}
	for d := 0; d+1 < len(levels); d++ {
		p = append(p, levels[d][(i>>d)^1])
	}
	return p
}

func randLeaves(r *rand.Rand, n, size int) ([][]byte, [][32]byte) {
	data := make([][]byte, n)
	hashes := make([][32]byte, n)
	for i := range data {
		data[i] = make([]byte, size)
		for k := range data[i] {
			data[i][k] = byte(r.Uint32())
		}
		hashes[i] = LeafHash(uint64(i), data[i])
	}
	return data, hashes
}

func TestLeafHashAndNode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Every stack-buffer size class, its edges, and a streamed leaf.
	for _, size := range []int{0, 1, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 4096} {
		leaf := make([]byte, size)
		for k := range leaf {
			leaf[k] = byte(r.Uint32())
		}
		i := r.Uint64()
		if got, want := LeafHash(i, leaf), refLeaf(i, leaf); got != want {
			t.Errorf("LeafHash of %d bytes: %x, want %x", size, got, want)
		}
	}
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	if Node(a, b) != refNode(a, b) || Node(a, b) == Node(b, a) {
		t.Error("Node")
	}
	pad := sha256.Sum256([]byte{0x02})
	for d := 0; d <= MaxHeight; d++ {
		if PadHash(d) != pad {
			t.Fatalf("PadHash(%d)", d)
		}
		pad = refNode(pad, pad)
	}
	// Pinned: the padding leaf.
	if h := PadHash(0); hex.EncodeToString(h[:]) != "dbc1b4c900ffe48d575b5da5c638040125f65db0fe3e24494b76ea986457d986" {
		t.Errorf("PadHash(0) = %x", h)
	}
	for l, d := range map[uint64]int{0: 0, 1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 100: 7, 1 << 40: 40, 1<<40 + 1: 41} {
		if Depth(l) != d {
			t.Errorf("Depth(%d) = %d, want %d", l, Depth(l), d)
		}
	}
}

// Build gives the straight-line tree's root and paths for every leaf
// count from 0 to 70 and a few larger ones that split levels across
// workers, and every path folds back to the root.
func TestBuildMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	counts := []int{}
	for n := 0; n <= 70; n++ {
		counts = append(counts, n)
	}
	counts = append(counts, 4096, 8191, 3*4096+5, 1<<14)
	for _, n := range counts {
		_, hashes := randLeaves(r, n, 16)
		ref := refLevels(hashes)
		want := ref[len(ref)-1][0]
		for _, workers := range []int{1, 4, 0} {
			tr := Build(hashes, workers)
			if tr.Root() != want {
				t.Fatalf("%d leaves, %d workers: root %x, reference %x", n, workers, tr.Root(), want)
			}
			if tr.Len() != n || tr.Depth() != len(ref)-1 || tr.Depth() != Depth(uint64(n)) {
				t.Fatalf("%d leaves: Len %d, Depth %d, want %d", n, tr.Len(), tr.Depth(), len(ref)-1)
			}
		}
		tr := Build(hashes, 2)
		step := max(1, n/37)
		for i := 0; i < n; i += step {
			p := tr.Path(uint64(i))
			if !slices.Equal(p, refPath(ref, uint64(i))) {
				t.Fatalf("%d leaves: path of leaf %d differs from the reference", n, i)
			}
			if tr.Leaf(uint64(i)) != hashes[i] {
				t.Fatalf("%d leaves: Leaf(%d)", n, i)
			}
			if PathRoot(uint64(i), hashes[i], p) != want {
				t.Fatalf("%d leaves: path of leaf %d does not lead to the root", n, i)
			}
		}
	}
}

// A path verifies only for its own leaf, index and siblings: a changed
// leaf, index, sibling, a path one hash short or one too long gives
// another root.
func TestPathRootRejectsWrongPath(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	_, hashes := randLeaves(r, 45, 32)
	tr := Build(hashes, 1)
	root := tr.Root()
	for i := range uint64(45) {
		p := tr.Path(i)
		if PathRoot(i, hashes[i], p) != root {
			t.Fatalf("leaf %d: honest path rejected", i)
		}
		other := hashes[(i+1)%45]
		if PathRoot(i, other, p) == root {
			t.Fatalf("leaf %d: another leaf's hash accepted", i)
		}
		if PathRoot(i^1, hashes[i], p) == root || PathRoot(i^8, hashes[i], p) == root {
			t.Fatalf("leaf %d: another index accepted", i)
		}
		for d := range p {
			bad := slices.Clone(p)
			bad[d][r.IntN(32)] ^= 1 << r.IntN(8)
			if PathRoot(i, hashes[i], bad) == root {
				t.Fatalf("leaf %d: sibling %d flipped, accepted", i, d)
			}
		}
		if PathRoot(i, hashes[i], p[:len(p)-1]) == root {
			t.Fatalf("leaf %d: short path accepted", i)
		}
		if PathRoot(i, hashes[i], append(slices.Clone(p), PadHash(len(p)))) == root {
			t.Fatalf("leaf %d: long path accepted", i)
		}
	}
}

// BuildOver the roots of complete subtrees gives the tree over all of the
// subtrees' leaves: the same root, and the subtree paths followed by the
// upper paths are the full paths.
func TestBuildOverSubtrees(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const height = 3 // 8 leaves per subtree
	for _, subtrees := range []int{1, 2, 3, 5, 8, 13} {
		_, hashes := randLeaves(r, subtrees<<height, 8)
		full := Build(hashes, 1)
		roots := make([][32]byte, subtrees)
		subs := make([]*Tree, subtrees)
		for s := range roots {
			subs[s] = Build(hashes[s<<height:(s+1)<<height], 1)
			// ReduceRoot agrees with the subtree's root.
			if got := ReduceRoot(slices.Clone(hashes[s<<height : (s+1)<<height])); got != subs[s].Root() {
				t.Fatalf("ReduceRoot of subtree %d", s)
			}
			roots[s] = subs[s].Root()
		}
		top := BuildOver(roots, height, 2)
		if top.Root() != full.Root() {
			t.Fatalf("%d subtrees: root %x, full tree %x", subtrees, top.Root(), full.Root())
		}
		for i := range uint64(len(hashes)) {
			s := i >> height
			p := append(subs[s].Path(i&(1<<height-1)), top.Path(s)...)
			if !slices.Equal(p, full.Path(i)) {
				t.Fatalf("%d subtrees: path of leaf %d", subtrees, i)
			}
		}
	}
}

// FromLevels keeps levels hashed elsewhere and answers like Build over
// the same leaves; malformed shapes are refused.
func TestFromLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 2, 7, 16, 33} {
		_, hashes := randLeaves(r, n, 8)
		b := Build(hashes, 1)
		levels := [][][32]byte{hashes}
		for len(levels[len(levels)-1]) > 1 {
			below := levels[len(levels)-1]
			up := make([][32]byte, (len(below)+1)/2)
			for k := range up {
				right := PadHash(len(levels) - 1)
				if 2*k+1 < len(below) {
					right = below[2*k+1]
				}
				up[k] = Node(below[2*k], right)
			}
			levels = append(levels, up)
		}
		tr, err := FromLevels(levels)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Root() != b.Root() || tr.Depth() != b.Depth() {
			t.Fatalf("%d leaves: FromLevels root differs from Build", n)
		}
		for i := range uint64(n) {
			if !slices.Equal(tr.Path(i), b.Path(i)) {
				t.Fatalf("%d leaves: path of leaf %d", n, i)
			}
		}
	}
	three := make([][32]byte, 3)
	for _, bad := range [][][][32]byte{
		nil,
		{three},                          // no levels above three leaves
		{three, make([][32]byte, 1)},     // a level of 1 above 3
		{three, make([][32]byte, 2)},     // no root
		{three[:1], make([][32]byte, 1)}, // a level above a single leaf
	} {
		if _, err := FromLevels(bad); err == nil {
			t.Errorf("FromLevels accepted levels of sizes %v", sizes(bad))
		}
	}
}

func sizes(levels [][][32]byte) []int {
	var out []int
	for _, l := range levels {
		out = append(out, len(l))
	}
	return out
}

func TestReduceRootPanicsOffPowerOfTwo(t *testing.T) {
	for _, n := range []int{0, 3, 6} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ReduceRoot of %d nodes did not panic", n)
				}
			}()
			ReduceRoot(make([][32]byte, n))
		}()
	}
}

func BenchmarkLeafHash(b *testing.B) {
	for _, size := range []int{64, 256, 1024} {
		leaf := make([]byte, size)
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var sink [32]byte
			for b.Loop() {
				sink = LeafHash(12345, leaf)
			}
			_ = sink
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	leaves := make([][32]byte, 1<<16)
	for b.Loop() {
		Build(leaves, 0)
	}
}
