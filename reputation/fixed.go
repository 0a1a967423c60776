package reputation

import (
	"math/big"
	"math/bits"
)

// Fixed-point helpers. Everything here is integer arithmetic, so every replica
// and every auditor computes bit-identical results.

// decayFrac is Q62: decayPow[i] = 2^(-2^-(i+1)) * 2^62, i.e. 2^-1/2, 2^-1/4, …
// It is computed once with exact integer square roots.
var decayPow [32]uint64

const q62 = uint64(1) << 62

func init() {
	// c_0 = 2^-1/2 in Q62 = sqrt(2^-1) = sqrt(2^61 * 2^62) / 2^62 ... computed
	// as isqrt(prev * 2^62) starting from prev = 2^-1 (Q62: 1<<61).
	prev := new(big.Int).SetUint64(q62 >> 1)
	for i := range decayPow {
		x := new(big.Int).Lsh(prev, 62)
		x.Sqrt(x)
		decayPow[i] = x.Uint64()
		prev = x
	}
}

// mulQ62 returns floor(x * f / 2^62) for f <= 2^62.
func mulQ62(x, f uint64) uint64 {
	hi, lo := bits.Mul64(x, f)
	return hi<<2 | lo>>62
}

// decay returns floor-ish x * 2^(-dt/halfLife). halfLife must be positive.
// The fractional part of dt/halfLife is resolved to 32 binary digits.
func decay(x, dt, halfLife uint64) uint64 {
	if x == 0 || dt == 0 {
		return x
	}
	whole := dt / halfLife
	if whole >= 64 {
		return 0
	}
	rem := dt % halfLife
	x >>= whole
	if rem == 0 || x == 0 {
		return x
	}
	// frac = rem * 2^32 / halfLife, a 32-bit binary fraction in [0, 1).
	frac, _ := bits.Div64(rem>>32, rem<<32, halfLife)
	f := q62
	for i := 0; i < 32; i++ {
		if frac&(1<<(31-i)) != 0 {
			f = mulQ62(f, decayPow[i])
		}
	}
	return mulQ62(x, f)
}

// satAdd adds without wrapping, saturating at limit.
func satAdd(a, b, limit uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 || s > limit {
		return limit
	}
	return s
}

// ratioBP returns num*10000/den clamped to [0, 10000]; den == 0 gives 0.
func ratioBP(num, den uint64) uint32 {
	if den == 0 {
		return 0
	}
	hi, lo := bits.Mul64(num, MaxBP)
	if hi >= den {
		return MaxBP
	}
	q, _ := bits.Div64(hi, lo, den)
	if q > MaxBP {
		return MaxBP
	}
	return uint32(q)
}
