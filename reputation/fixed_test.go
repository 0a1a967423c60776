package reputation

import (
	"math/big"
	"testing"
)

func TestDecayPowConstants(t *testing.T) {
	// decayPow[i]^(2^(i+1)) must be 1/2; check the first one exactly:
	// decayPow[0]^2 ~= 2^123 (0.5 in Q124).
	sq := new(big.Int).SetUint64(decayPow[0])
	sq.Mul(sq, sq)
	half := new(big.Int).Lsh(big.NewInt(1), 123)
	diff := new(big.Int).Sub(half, sq)
	if diff.Sign() < 0 || diff.Cmp(new(big.Int).Lsh(big.NewInt(1), 64)) > 0 {
		t.Fatalf("decayPow[0]^2 = %v, want just under %v", sq, half)
	}
	for i := 1; i < len(decayPow); i++ {
		if decayPow[i] <= decayPow[i-1] || decayPow[i] >= q62 {
			t.Fatalf("decayPow not increasing towards 1 at %d", i)
		}
	}
}

func TestDecay(t *testing.T) {
	const h = 1000
	x := uint64(1) << 40
	tests := []struct {
		name   string
		x, dt  uint64
		lo, hi uint64 // accepted range
	}{
		{"no time", x, 0, x, x},
		{"zero value", 0, 5 * h, 0, 0},
		{"one half-life", x, h, x / 2, x / 2},
		{"two half-lives", x, 2 * h, x / 4, x / 4},
		// 2^40 / sqrt(2) = 777472127993.8...
		{"half a half-life", x, h / 2, 777472127990, 777472127994},
		// 2^40 * 2^-1.25 = 462287693163.3...
		{"1.25 half-lives", x, h + h/4, 462287693160, 462287693164},
		{"64 half-lives", x, 64 * h, 0, 0},
		{"huge dt", x, ^uint64(0), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decay(tc.x, tc.dt, h)
			if got < tc.lo || got > tc.hi {
				t.Fatalf("decay(%d, %d) = %d, want in [%d, %d]", tc.x, tc.dt, got, tc.lo, tc.hi)
			}
		})
	}
}

func TestDecayMonotone(t *testing.T) {
	const h = 7 * 24 * 3600 * 1000
	prev := uint64(1 << 45)
	for dt := uint64(0); dt < 3*h; dt += h / 97 {
		got := decay(1<<45, dt, h)
		if got > prev {
			t.Fatalf("decay not monotone at dt=%d: %d > %d", dt, got, prev)
		}
		prev = got
	}
}

func TestRatioBP(t *testing.T) {
	tests := []struct {
		num, den uint64
		want     uint32
	}{
		{0, 0, 0},
		{1, 0, 0},
		{0, 5, 0},
		{1, 2, 5000},
		{2, 3, 6666},
		{5, 5, 10000},
		{7, 5, 10000},
		{1 << 62, 1 << 63, 5000},
	}
	for _, tc := range tests {
		if got := ratioBP(tc.num, tc.den); got != tc.want {
			t.Errorf("ratioBP(%d, %d) = %d, want %d", tc.num, tc.den, got, tc.want)
		}
	}
}

func BenchmarkDecay(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		_ = decay(1<<40, uint64(i)*7919, 7*24*3600*1000)
	}
}
