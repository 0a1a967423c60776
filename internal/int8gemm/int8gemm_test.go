package int8gemm

import (
	"math/rand/v2"
	"testing"
)

// PackPair, Dot4 and UnpackPair give both rows' dot products with four
// columns exactly, at lengths around the 8-wide blocking and at the
// extremes of int8 (every product −128·−128 = 2^14 at K = 65536: a row
// sum of 2^30).
func TestPackedDot4(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []int8 {
		v := make([]int8, n)
		for k := range v {
			v[k] = int8(r.Uint32())
		}
		return v
	}
	check := func(name string, lo, hi []int8, b [4][]int8) {
		t.Helper()
		a := make([]int64, len(lo))
		PackPair(a, lo, hi)
		s0, s1, s2, s3 := Dot4(a, b[0], b[1], b[2], b[3])
		for c, s := range [4]int64{s0, s1, s2, s3} {
			var wantLo, wantHi int32
			for k := range lo {
				wantLo += int32(lo[k]) * int32(b[c][k])
				wantHi += int32(hi[k]) * int32(b[c][k])
			}
			if gotLo, gotHi := UnpackPair(s); gotLo != wantLo || gotHi != wantHi {
				t.Fatalf("%s, column %d: (%d, %d), want (%d, %d)", name, c, gotLo, gotHi, wantLo, wantHi)
			}
		}
	}
	for _, n := range []int{0, 1, 7, 8, 9, 16, 63, 1024, 2048} {
		check("random", rnd(n), rnd(n), [4][]int8{rnd(n), rnd(n), rnd(n), rnd(n)})
	}
	const K = 65536
	min8, max8 := make([]int8, K), make([]int8, K)
	for k := range min8 {
		min8[k], max8[k] = -128, 127
	}
	check("extremes", min8, max8, [4][]int8{min8, max8, min8, max8})
	check("extremes swapped", max8, min8, [4][]int8{max8, min8, min8, max8})
	// Columns longer than a are read only up to len(a).
	a := make([]int64, 3)
	PackPair(a, []int8{1, 2, 3, 4}, []int8{5, 6, 7, 8})
	long := []int8{1, 1, 1, 100}
	if s, _, _, _ := Dot4(a, long, long, long, long); s != 6+18<<32 {
		t.Fatalf("Dot4 read past len(a): %d", s)
	}
}
