package gpuclass

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestMatchNVMLName(t *testing.T) {
	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"NVIDIA H100 80GB HBM3", H100SXM, true},
		{"NVIDIA H100 PCIe", H100PCIe, true},
		{"NVIDIA H200 141GB HBM3e", H200, true},
		{"NVIDIA A100-SXM4-80GB", A100_80, true},
		{"NVIDIA A100-PCIE-80GB", A100_80, true},
		{"NVIDIA A100 80GB PCIe", A100_80, true},
		{"NVIDIA A100-SXM4-40GB", A100_40, true},
		{"NVIDIA A100-PCIE-40GB", A100_40, true},
		{"NVIDIA L40S", L40S, true},
		{"NVIDIA GeForce RTX 4090", RTX4090, true},
		{"nvidia geforce rtx 3090", RTX3090, true},
		{"NVIDIA L40", "", false},
		{"NVIDIA GH200 480GB", "", false},
		{"NVIDIA H100 NVL", "", false},
		{"NVIDIA H100 80GB HBM3 MIG 1g.10gb", "", false},
		{"NVIDIA GeForce RTX 4090 D", "", false},
		{"NVIDIA GeForce RTX 3090 Ti", "", false},
		{"NVIDIA A30-PCIE-24GB", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := MatchNVMLName(tc.name)
			if ok != tc.wantOK || c.Name != tc.want {
				t.Fatalf("MatchNVMLName(%q) = %q, %v; want %q, %v", tc.name, c.Name, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	for _, name := range Names() {
		c, err := Lookup(strings.ToUpper(name))
		if err != nil || c.Name != name {
			t.Errorf("Lookup(%q) = %q, %v", strings.ToUpper(name), c.Name, err)
		}
	}
	_, err := Lookup("B300")
	if !errors.Is(err, ErrUnknownClass) {
		t.Fatalf("Lookup(B300) error = %v, want ErrUnknownClass", err)
	}
	for _, name := range Names() {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not list known class %q", err, name)
		}
	}
}

func TestTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Classes() {
		if seen[c.Name] {
			t.Errorf("duplicate class %q", c.Name)
		}
		seen[c.Name] = true
		if c.Int8GOPS == 0 || c.Poseidon2PerSec == 0 || c.MemoryBytes == 0 || c.MemoryBandwidthGBps == 0 {
			t.Errorf("class %q has a zero figure: %+v", c.Name, c)
		}
		if c.GEMMEfficiencyPercent == 0 || c.GEMMEfficiencyPercent > 100 {
			t.Errorf("class %q efficiency %d%% out of (0,100]", c.Name, c.GEMMEfficiencyPercent)
		}
		if c.Name != CPU && len(c.NVMLNames) == 0 {
			t.Errorf("class %q has no NVML name patterns", c.Name)
		}
	}
}

func TestClassesReturnsCopy(t *testing.T) {
	cs := Classes()
	cs[0].NVMLNames[0].All[0] = "mutated"
	cs[0].Int8GOPS = 1
	if c, _ := Lookup(cs[0].Name); c.Int8GOPS == 1 || c.NVMLNames[0].All[0] == "mutated" {
		t.Fatal("mutating Classes() changed the table")
	}
}

func TestExpectedMillis(t *testing.T) {
	h100, _ := Lookup(H100SXM)
	cpu, _ := Lookup(CPU)
	tests := []struct {
		name    string
		c       Class
		m, n, k int
		want    uint64
	}{
		{"empty", h100, 0, 0, 0, 0},
		// cpu: 2·64·64·64 = 524288 ops at 2 GOPS·100% = 2e6 ops/ms → 1 ms;
		// hashes: 128·ceil(64/31)=384 + 4096/4=1024 → 1408 at 100/ms → 15 ms.
		{"cpu 64 cube", cpu, 64, 64, 64, 1 + 15},
		// H100: 2·8192³ = 1.0995e12 ops at 1979000·60·1e4 = 1.1874e12 ops/s·1e-3 → 1 ms;
		// hashes: 16384·265 = 4341760 + 8192²/4 = 16777216 → 21118976 at 4e5 per ms → 53 ms.
		{"h100 8192 cube", h100, 8192, 8192, 8192, 1 + 53},
		{"saturates", h100, math.MaxInt, math.MaxInt, math.MaxInt, math.MaxUint64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.ExpectedMillis(tc.m, tc.n, tc.k); got != tc.want {
				t.Fatalf("ExpectedMillis(%d,%d,%d) = %d, want %d", tc.m, tc.n, tc.k, got, tc.want)
			}
			if got := ExpectedMillis(tc.c, tc.m, tc.n, tc.k); got != tc.c.ExpectedMillis(tc.m, tc.n, tc.k) {
				t.Fatalf("package ExpectedMillis disagrees with method: %d", got)
			}
		})
	}
	if got, want := h100.ExpectedMillis(-5, 10, 10), h100.ExpectedMillis(0, 10, 10); got != want {
		t.Fatalf("negative m: ExpectedMillis = %d, want %d (as for m=0)", got, want)
	}
	if got := (Class{}).ExpectedMillis(1, 1, 1); got != math.MaxUint64 {
		t.Fatalf("zero class ExpectedMillis = %d, want MaxUint64", got)
	}
}

func TestExpectedMicros(t *testing.T) {
	cpu, _ := Lookup(CPU)
	// 524288 ops at 4000 ops/µs = 132 µs; 1408 hashes at 0.1/µs = 14080 µs.
	if got, want := cpu.ExpectedMicros(64, 64, 64), uint64(132+14080); got != want {
		t.Fatalf("ExpectedMicros = %d, want %d", got, want)
	}
	for _, c := range Classes() {
		us, ms := c.ExpectedMicros(1024, 1024, 256), c.ExpectedMillis(1024, 1024, 256)
		if us > ms*1000 || us+2000 < ms*1000 {
			t.Errorf("%s: %d µs disagrees with %d ms", c.Name, us, ms)
		}
	}
	if got := (Class{}).ExpectedMicros(1, 1, 1); got != math.MaxUint64 {
		t.Fatalf("zero class = %d", got)
	}
}

func TestDeadline(t *testing.T) {
	h100, _ := Lookup(H100SXM)
	if got, want := h100.Deadline(0, 0, 0), uint64(SlackMillis); got != want {
		t.Fatalf("Deadline of empty workload = %d, want slack %d", got, want)
	}
	e := h100.ExpectedMillis(8192, 8192, 8192)
	if got, want := Deadline(h100, 8192, 8192, 8192), e*MarginPercent/100+SlackMillis; got != want {
		t.Fatalf("Deadline = %d, want %d", got, want)
	}
	if got := h100.Deadline(math.MaxInt, 1<<20, 1<<20); got != math.MaxUint64 {
		t.Fatalf("Deadline saturation = %d", got)
	}
}

// A weaker class claiming a stronger one must miss the stronger class's
// deadline on a workload large enough to dominate the slack.
func TestWeakerClassMissesStrongerDeadline(t *testing.T) {
	pairs := []struct{ claimed, actual string }{
		{H100SXM, A100_80},
		{H100SXM, RTX3090},
		{A100_80, RTX3090},
		{RTX4090, RTX3090},
		{RTX3090, CPU},
	}
	for _, p := range pairs {
		claimed, _ := Lookup(p.claimed)
		actual, _ := Lookup(p.actual)
		d := claimed.LargestSquareDim()
		if p.claimed == RTX3090 {
			d = 4096 // a CPU claiming a GPU is caught even on a small workload
		}
		if dl, took := claimed.Deadline(d, d, d), actual.ExpectedMillis(d, d, d); took <= dl {
			t.Errorf("%s claiming %s: takes %d ms, deadline %d ms: not caught", p.actual, p.claimed, took, dl)
		}
		if dl, took := claimed.Deadline(d, d, d), claimed.ExpectedMillis(d, d, d); took > dl {
			t.Errorf("honest %s: takes %d ms > deadline %d ms", p.claimed, took, dl)
		}
	}
}

func TestFits(t *testing.T) {
	rtx, _ := Lookup(RTX4090)
	h200, _ := Lookup(H200)
	if !rtx.Fits(8192, 8192, 8192) {
		t.Error("8192 cube should fit a 24 GiB card")
	}
	const big = 65536
	if rtx.Fits(big, big, big) {
		t.Errorf("65536 cube needs %d bytes and must not fit 24 GiB", MemoryNeeded(big, big, big))
	}
	if !h200.Fits(big, big/2, big) {
		t.Errorf("65536x32768 needs %d bytes and should fit 141 GiB", MemoryNeeded(big, big/2, big))
	}
}

func TestLargestSquareDim(t *testing.T) {
	tests := []struct {
		class string
		want  int
	}{
		{H100SXM, 1 << 15},
		{H200, 1 << 16},
		{A100_40, 1 << 15},
		{RTX4090, 1 << 15},
		{CPU, 1 << 13},
		{"", 0},
	}
	for _, tc := range tests {
		c, _ := Lookup(tc.class)
		if got := c.LargestSquareDim(); got != tc.want {
			t.Errorf("%q LargestSquareDim = %d, want %d", tc.class, got, tc.want)
		}
		if got := c.LargestSquareDim(); got > 0 && c.Fits(2*got, 2*got, 2*got) {
			t.Errorf("%q: %d is not the largest", tc.class, got)
		}
	}
}

func FuzzExpectedMillisMonotonic(f *testing.F) {
	f.Add(uint16(1), uint16(2), uint16(3), uint8(0))
	f.Add(uint16(4096), uint16(4096), uint16(4096), uint8(8))
	f.Fuzz(func(t *testing.T, m, n, k uint16, ci uint8) {
		cs := Classes()
		c := cs[int(ci)%len(cs)]
		base := c.ExpectedMillis(int(m), int(n), int(k))
		if grown := c.ExpectedMillis(int(m)+1, int(n), int(k)); grown < base {
			t.Fatalf("%s: growing m decreased expected time %d -> %d", c.Name, base, grown)
		}
		if dl := c.Deadline(int(m), int(n), int(k)); dl < base {
			t.Fatalf("%s: deadline %d below expected %d", c.Name, dl, base)
		}
	})
}

func BenchmarkDeadline(b *testing.B) {
	c, _ := Lookup(H100SXM)
	for b.Loop() {
		_ = c.Deadline(8192, 8192, 8192)
	}
}

func TestExpectedLatencyWithinDeadline(t *testing.T) {
	shapes := [][3]int{{16, 16, 32}, {64, 64, 64}, {1024, 1024, 256}, {8192, 8192, 8192}}
	for _, c := range Classes() {
		for _, s := range shapes {
			e := c.ExpectedMillis(s[0], s[1], s[2])
			lat := c.ExpectedLatencyMillis(s[0], s[1], s[2])
			if lat != e+LatencyAllowanceMillis {
				t.Errorf("%s %v: ExpectedLatencyMillis = %d, want %d + %d", c.Name, s, lat, e, LatencyAllowanceMillis)
			}
			// An honest device at its expected latency, and at the 1.5x
			// partial-credit bound of the capacity score, meets the deadline.
			if dl := c.Deadline(s[0], s[1], s[2]); lat*3/2 >= dl {
				t.Errorf("%s %v: 1.5 x expected latency %d ms is not inside the deadline %d ms", c.Name, s, lat*3/2, dl)
			}
		}
	}
}
