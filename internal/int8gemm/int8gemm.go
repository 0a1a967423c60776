// Package int8gemm holds the inner loops of the CPU int8 GEMMs of the
// timed phase (prover/timed's reference compute) and of the memory phase's
// table fill (prover/memwalk): two rows of A packed into one int64 per k so
// that one multiply-add per k accumulates both rows' sums.
package int8gemm

// PackPair packs two rows into one int64 per k: dst[k] = lo[k] + hi[k]·2^32
// for k < len(dst). A product with an int8 column then accumulates both
// rows' sums in one int64: as long as each row's sum stays within the
// int32 range (|Σ| < 2^31), the low 32 bits hold lo's sum exactly and
// UnpackPair recovers both.
func PackPair(dst []int64, lo, hi []int8) {
	hi = hi[:len(dst)]
	lo = lo[:len(dst)]
	for k := range dst {
		dst[k] = int64(lo[k]) + int64(hi[k])<<32
	}
}

// UnpackPair splits an accumulator of packed rows into the two rows' sums.
func UnpackPair(v int64) (lo, hi int32) {
	l := int64(int32(uint32(v)))
	return int32(l), int32((v - l) >> 32)
}

// Dot4 returns Σ a[k]·b_c[k] over k < len(a) for four columns b0 … b3
// (each at least len(a) long), in blocks of 8 over k.
func Dot4(a []int64, b0, b1, b2, b3 []int8) (s0, s1, s2, s3 int64) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	k := 0
	for ; k+8 <= n; k += 8 {
		a8 := a[k : k+8 : k+8]
		c0 := b0[k : k+8 : k+8]
		c1 := b1[k : k+8 : k+8]
		c2 := b2[k : k+8 : k+8]
		c3 := b3[k : k+8 : k+8]
		for u := 0; u < 8; u++ {
			x := a8[u]
			s0 += x * int64(c0[u])
			s1 += x * int64(c1[u])
			s2 += x * int64(c2[u])
			s3 += x * int64(c3[u])
		}
	}
	for ; k < n; k++ {
		x := a[k]
		s0 += x * int64(b0[k])
		s1 += x * int64(b1[k])
		s2 += x * int64(b2[k])
		s3 += x * int64(b3[k])
	}
	return
}
