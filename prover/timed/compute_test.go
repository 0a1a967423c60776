package timed

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// refWord is an independent transcription of the generator in doc.go.
func refWord(ctr, ka, kb uint64) uint64 {
	mix := func(z uint64) uint64 {
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	return mix(mix(ctr^ka) ^ kb)
}

func refKeys(nonce [32]byte) [4]uint64 {
	h := sha256.Sum256(append([]byte("truegpu/timed/v1/key"), nonce[:]...))
	var k [4]uint64
	for t := range k {
		k[t] = binary.LittleEndian.Uint64(h[8*t:])
	}
	return k
}

func refA(s Spec, k [4]uint64, i, kk uint32) int8 {
	w := refWord(uint64(i)*uint64(s.K/8)+uint64(kk/8), k[0], k[1])
	return int8((w >> (8 * (kk % 8))) & 0xff)
}

func refB(s Spec, k [4]uint64, kk, j uint32) int8 {
	w := refWord(uint64(j)*uint64(s.K/8)+uint64(kk/8), k[2], k[3])
	return int8((w >> (8 * (kk % 8))) & 0xff)
}

// naiveC is the triple loop with int32 wrapping arithmetic.
func naiveC(s Spec, nonce [32]byte) []uint8 {
	k := refKeys(nonce)
	a := make([]int8, int(s.M)*int(s.K))
	for i := uint32(0); i < s.M; i++ {
		for kk := uint32(0); kk < s.K; kk++ {
			a[i*s.K+kk] = refA(s, k, i, kk)
		}
	}
	b := make([]int8, int(s.K)*int(s.N))
	for kk := uint32(0); kk < s.K; kk++ {
		for j := uint32(0); j < s.N; j++ {
			b[kk*s.N+j] = refB(s, k, kk, j)
		}
	}
	c := make([]uint8, s.Cells())
	for i := uint32(0); i < s.M; i++ {
		for j := uint32(0); j < s.N; j++ {
			var acc int32
			for kk := uint32(0); kk < s.K; kk++ {
				acc += int32(a[i*s.K+kk]) * int32(b[kk*s.N+j])
			}
			c[i*s.N+j] = uint8(acc)
		}
	}
	return c
}

// naiveTreeRoot builds the padded tree level by level over all P leaves.
func naiveTreeRoot(s Spec, c []uint8) [32]byte {
	var level [][32]byte
	for l := uint64(0); l < s.Leaves(); l++ {
		buf := []byte{0}
		buf = binary.BigEndian.AppendUint64(buf, l)
		buf = append(buf, c[l*256:l*256+256]...)
		level = append(level, sha256.Sum256(buf))
	}
	for len(level)&(len(level)-1) != 0 {
		level = append(level, sha256.Sum256([]byte{2}))
	}
	for len(level) > 1 {
		var up [][32]byte
		for n := 0; n < len(level); n += 2 {
			up = append(up, sha256.Sum256(append(append([]byte{1}, level[n][:]...), level[n+1][:]...)))
		}
		level = up
	}
	return level[0]
}

func randNonce(r *rand.Rand) [32]byte {
	var n [32]byte
	for i := range n {
		n[i] = byte(r.Uint32())
	}
	return n
}

func TestComputeMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	specs := []Spec{
		{M: 1, N: 256, K: 8},
		{M: 1, N: 768, K: 24},
		{M: 3, N: 512, K: 8},
		{M: 5, N: 256, K: 64},
		{M: 17, N: 256, K: 16},   // 17 leaves: odd tile remainder, padded tree
		{M: 33, N: 768, K: 40},   // 99 leaves
		{M: 2, N: 256, K: 2056},  // K crosses the K-blocking step
		{M: 16, N: 1280, K: 128}, // 80 leaves
	}
	for _, s := range specs {
		nonce := randNonce(r)
		want := naiveC(s, nonce)
		for _, workers := range []int{1, 3} {
			res, err := Compute(context.Background(), s, nonce, workers)
			if err != nil {
				t.Fatal(err)
			}
			for l := uint64(0); l < s.Leaves(); l++ {
				b, err := res.LeafBytes(l)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != string(want[l*256:l*256+256]) {
					t.Fatalf("%+v workers %d: leaf %d differs from the naive product", s, workers, l)
				}
			}
			if got, want := res.TreeRoot(), naiveTreeRoot(s, want); got != want {
				t.Fatalf("%+v: tree root %x, naive %x", s, got, want)
			}
			if res.Root() != Commit(s, nonce, res.TreeRoot()) {
				t.Fatalf("%+v: root is not the commitment of the tree root", s)
			}
		}
		keys := Key(nonce)
		for q := 0; q < 20; q++ {
			i, j := r.Uint32N(s.M), r.Uint32N(s.N)
			if got := uint8(Cell(s, keys, i, j)); got != want[uint64(i)*uint64(s.N)+uint64(j)] {
				t.Fatalf("%+v: Cell(%d,%d) low byte %#x, naive %#x", s, i, j, got, want[uint64(i)*uint64(s.N)+uint64(j)])
			}
		}
	}
}

func TestCellMatchesRowCol(t *testing.T) {
	s := Spec{M: 4, N: 256, K: 4096}
	keys := Key([32]byte{9})
	a := make([]int8, s.K)
	b := make([]int8, s.K)
	for _, ij := range [][2]uint32{{0, 0}, {3, 255}, {2, 17}} {
		RowA(s, keys, ij[0], a)
		ColB(s, keys, ij[1], b)
		var acc int32
		for k := range a {
			acc += int32(a[k]) * int32(b[k])
		}
		if got := Cell(s, keys, ij[0], ij[1]); got != acc {
			t.Fatalf("Cell(%d,%d) = %d, row·column = %d", ij[0], ij[1], got, acc)
		}
	}
}

func TestRecomputedLeavesMatch(t *testing.T) {
	old := keepBytesLimit
	keepBytesLimit = 0
	defer func() { keepBytesLimit = old }()
	s := Spec{M: 9, N: 512, K: 24}
	nonce := [32]byte{7}
	res, err := Compute(context.Background(), s, nonce, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.bytes != nil {
		t.Fatal("leaf bytes kept above the limit")
	}
	want := naiveC(s, nonce)
	for l := uint64(0); l < s.Leaves(); l++ {
		b, err := res.LeafBytes(l)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(want[l*256:l*256+256]) {
			t.Fatalf("recomputed leaf %d differs", l)
		}
	}
	seed := [SeedSize]byte{1}
	op, err := res.Open(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(s, nonce, res.Root(), seed, op); err != nil {
		t.Fatal(err)
	}
	if _, err := res.LeafBytes(s.Leaves()); err == nil {
		t.Fatal("out-of-range leaf accepted")
	}
}

func TestComputeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Compute(ctx, Spec{M: 64, N: 256, K: 64}, [32]byte{}, 2)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNewResultFromLeavesMatchesCompute(t *testing.T) {
	s := Spec{M: 5, N: 768, K: 16}
	nonce := [32]byte{3}
	res, err := Compute(context.Background(), s, nonce, 1)
	if err != nil {
		t.Fatal(err)
	}
	hashes := make([][32]byte, res.tree.Len())
	for l := range hashes {
		hashes[l] = res.tree.Leaf(uint64(l))
	}
	r2, err := NewResultFromLeaves(s, nonce, hashes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Root() != res.Root() {
		t.Fatal("roots differ")
	}
	seed := [SeedSize]byte{5}
	a, _ := res.Open(seed)
	b, err := r2.Open(seed)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("openings differ")
	}
	if _, err := NewResultFromLeaves(s, nonce, hashes[1:], nil); err == nil {
		t.Fatal("wrong leaf count accepted")
	}
	if _, err := NewResultFromLeaves(Spec{M: 1, N: 100, K: 8}, nonce, hashes, nil); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}
}

func TestComputeRefuses(t *testing.T) {
	if _, err := Compute(context.Background(), Spec{M: 1, N: 300, K: 8}, [32]byte{}, 1); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("invalid spec: %v", err)
	}
	_, err := Compute(context.Background(), Spec{M: 1 << 24, N: 1 << 24, K: 8}, [32]byte{}, 1)
	if err == nil || errors.Is(err, ErrBadSpec) {
		t.Fatalf("oversized spec: %v", err)
	}
}
