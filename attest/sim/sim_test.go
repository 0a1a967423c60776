package sim

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/devicetest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

func testProfile(t testing.TB) *prover.Profile {
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func reference(t testing.TB, p *prover.Profile, n prover.Nonce) ([]int32, [32]byte) {
	cells := prover.Compute(p, n)
	tree, err := prover.NewTree(p, cells)
	if err != nil {
		t.Fatal(err)
	}
	return cells, tree.Root()
}

func TestConformance(t *testing.T) {
	for _, profile := range []string{"h100", "a100-40gb", "rtx3090", "cpu", "clone-h200"} {
		t.Run(profile, func(t *testing.T) {
			devicetest.Run(t, func(t *testing.T) attest.Device {
				d, err := New(profile, Options{Seed: []byte(t.Name())})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}, devicetest.Config{})
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		profile string
		claimed string
		check   func(attest.Device) bool
	}{
		{"h100", gpuclass.H100SXM, func(d attest.Device) bool { _, ok := d.(*Honest); return ok }},
		{"H100-PCIe", gpuclass.H100PCIe, func(d attest.Device) bool { _, ok := d.(*Honest); return ok }},
		{"spoof-h100", gpuclass.H100SXM, func(d attest.Device) bool { _, ok := d.(*Spoofer); return ok }},
		{"rtx3090-as-h100", gpuclass.H100SXM, func(d attest.Device) bool {
			dc, ok := d.(*Downclass)
			return ok && dc.ActualClass() == gpuclass.RTX3090
		}},
		{"clone-a100", gpuclass.A100_80, func(d attest.Device) bool { _, ok := d.(*Clone); return ok }},
		{"replay-4090", gpuclass.RTX4090, func(d attest.Device) bool { _, ok := d.(*Replayer); return ok }},
		{"partial-l40s", gpuclass.L40S, func(d attest.Device) bool { _, ok := d.(*Partial); return ok }},
		{"garbage-h200", gpuclass.H200, func(d attest.Device) bool { _, ok := d.(*Garbage); return ok }},
		{"flaky-cpu", gpuclass.CPU, func(d attest.Device) bool { _, ok := d.(*Flaky); return ok }},
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			d, err := New(tc.profile, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(d) {
				t.Errorf("New(%q) = %T", tc.profile, d)
			}
			if got := d.(attest.ClassClaimer).ClaimedClass(); got != tc.claimed {
				t.Errorf("claimed class %q, want %q", got, tc.claimed)
			}
		})
	}
	for _, bad := range []string{"", "b300", "spoof-b300", "h100-as-b300", "b300-as-h100", "replay-"} {
		if _, err := New(bad, Options{}); !errors.Is(err, gpuclass.ErrUnknownClass) {
			t.Errorf("New(%q) error = %v, want ErrUnknownClass", bad, err)
		}
	}
}

// TestProveHook: exactly the devices that make their own proofs have a
// prove hook, and it is theirs.
func TestProveHook(t *testing.T) {
	own := map[string]bool{"replay": true, "grind": true, "abandon": true, "garbage": true}
	for _, kind := range Kinds() {
		profile := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(kind, "<class>", "h100"), "<actual>", "rtx3090"), "<claimed>", "h100")
		d, err := New(profile, Options{Seed: []byte(profile)})
		if err != nil {
			t.Fatal(err)
		}
		k, _, _ := strings.Cut(profile, "-")
		hook := ProveHook(d)
		if (hook != nil) != own[k] {
			t.Errorf("ProveHook(%s): hook %v, want one: %v", profile, hook != nil, own[k])
		}
		if ad := AgentDevice(d); ad.Device != d || (ad.Prove != nil) != own[k] || ad.Class != "" {
			t.Errorf("AgentDevice(%s) = %+v", profile, ad)
		}
	}
	g, err := NewGarbage(gpuclass.H100SXM, Options{Seed: []byte("hook")})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ProveHook(g)(context.Background(), attest.Workload{}, attest.Sampling{}, prover.Address{}, nil)
	if err != nil || len(pr) != verifier.ProofSize {
		t.Fatalf("Garbage's hook: %d bytes, %v; want %d random bytes", len(pr), err, verifier.ProofSize)
	}
}

func TestSynthesizedFingerprintsMatchTheirClass(t *testing.T) {
	for _, c := range gpuclass.Classes() {
		fp, err := SynthesizeFingerprint(c.Name, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Name == gpuclass.CPU {
			continue
		}
		got, ok := gpuclass.MatchNVMLName(fp.Name)
		if !ok || got.Name != c.Name {
			t.Errorf("%s: product name %q matches %q, %v", c.Name, fp.Name, got.Name, ok)
		}
		if fp.MemoryTotalBytes > c.MemoryBytes+(8<<30) || fp.MemoryTotalBytes+(8<<30) < c.MemoryBytes {
			t.Errorf("%s: memory %d far from the class's %d", c.Name, fp.MemoryTotalBytes, c.MemoryBytes)
		}
	}
	a, _ := SynthesizeFingerprint(gpuclass.H100SXM, []byte("a"))
	b, _ := SynthesizeFingerprint(gpuclass.H100SXM, []byte("b"))
	if a.UUID == b.UUID || a.Serial == b.Serial || a.Digest() == b.Digest() {
		t.Error("different seeds gave the same identity")
	}
}

// elapsedOf runs w on d inside a synctest bubble, where the host computation
// takes no fake time, so Elapsed is exactly the modelled time.
func elapsedOf(t *testing.T, d attest.Device, w attest.Workload) (attest.Commitment, error) {
	var c attest.Commitment
	var err error
	synctest.Test(t, func(t *testing.T) {
		c, err = d.Run(context.Background(), w)
	})
	return c, err
}

func TestTimingModel(t *testing.T) {
	p := testProfile(t)
	w := attest.Workload{Profile: p, Nonce: devicetest.Nonce(1)}
	micros := func(class string) time.Duration {
		c, _ := gpuclass.Lookup(class)
		return time.Duration(c.ExpectedMicros(p.M, p.N, p.K)) * time.Microsecond
	}
	tests := []struct {
		profile string
		opts    Options
		want    time.Duration
	}{
		{"h100", Options{}, micros(gpuclass.H100SXM)},
		{"h100", Options{TimeScale: 1000}, 1000 * micros(gpuclass.H100SXM)},
		{"cpu", Options{}, micros(gpuclass.CPU)},
		{"spoof-h100", Options{}, micros(gpuclass.CPU)},
		{"rtx3090-as-h100", Options{TimeScale: 50}, 50 * micros(gpuclass.RTX3090)},
		{"partial-h100", Options{Percent: 25, TimeScale: 400}, 100 * micros(gpuclass.H100SXM)},
		{"garbage-h100", Options{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			d, err := New(tc.profile, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := elapsedOf(t, d, w)
			if err != nil {
				t.Fatal(err)
			}
			if c.Elapsed != tc.want {
				t.Errorf("elapsed %v, want %v", c.Elapsed, tc.want)
			}
		})
	}
	// A CPU pretending to be an H100 is slower than an honest H100.
	if micros(gpuclass.CPU) <= micros(gpuclass.H100SXM)*gpuclass.MarginPercent/100 {
		t.Errorf("cpu %v not beyond the H100 margin of %v", micros(gpuclass.CPU), micros(gpuclass.H100SXM))
	}
}

func TestCloneGroupSharesOneGPU(t *testing.T) {
	p := testProfile(t)
	// The group is created inside the bubble: its GPU channel must belong
	// to the bubble for fake time to advance while clones wait on it.
	synctest.Test(t, func(t *testing.T) {
		g, err := NewCloneGroup(gpuclass.A100_80, Options{Seed: []byte("clones"), TimeScale: 100})
		if err != nil {
			t.Fatal(err)
		}
		var clones []*Clone
		for range 3 {
			c, err := g.Device()
			if err != nil {
				t.Fatal(err)
			}
			clones = append(clones, c)
		}
		f0, _ := clones[0].Fingerprint(context.Background())
		for _, c := range clones[1:] {
			if f, _ := c.Fingerprint(context.Background()); !f.Equal(f0) {
				t.Fatalf("clones report different fingerprints")
			}
		}
		a100, _ := gpuclass.Lookup(gpuclass.A100_80)
		one := 100 * time.Duration(a100.ExpectedMicros(p.M, p.N, p.K)) * time.Microsecond
		start := time.Now()
		var mu sync.Mutex
		var finish []time.Duration
		var wg sync.WaitGroup
		for i, c := range clones {
			wg.Go(func() {
				if _, err := c.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(i)}); err != nil {
					t.Error(err)
				}
				mu.Lock()
				finish = append(finish, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(finish)
		want := []time.Duration{one, 2 * one, 3 * one}
		if !slices.Equal(finish, want) {
			t.Errorf("a storm over 3 clones finished at %v, want %v (runs serialized)", finish, want)
		}
	})
}

func TestReplayer(t *testing.T) {
	p := testProfile(t)
	d, _ := NewReplayer(gpuclass.H100SXM, Options{})
	ctx := context.Background()
	w1 := attest.Workload{Profile: p, Nonce: devicetest.Nonce(1)}
	w2 := attest.Workload{Profile: p, Nonce: devicetest.Nonce(2)}
	c1, err := d.Run(ctx, w1)
	if err != nil {
		t.Fatal(err)
	}
	if _, root := reference(t, p, w1.Nonce); c1.Root != root {
		t.Fatal("first run is not honest")
	}
	honestCalls := 0
	honest := func(context.Context) ([]byte, error) { honestCalls++; return []byte("proof-1"), nil }
	if _, err := d.Proof(ctx, w2, attest.Sampling{}, prover.Address{}, honest); err == nil {
		t.Fatal("Proof before any first proof succeeded")
	}
	pr1, err := d.Proof(ctx, w1, attest.Sampling{}, prover.Address{}, honest)
	if err != nil || string(pr1) != "proof-1" {
		t.Fatalf("first proof %q, %v", pr1, err)
	}
	c2, err := d.Run(ctx, w2)
	if err != nil || c2.Root != c1.Root {
		t.Fatalf("second root %x (err %v), want the replayed %x", c2.Root, err, c1.Root)
	}
	pr2, _ := d.Proof(ctx, w2, attest.Sampling{}, prover.Address{}, honest)
	if string(pr2) != "proof-1" || honestCalls != 1 {
		t.Fatalf("second proof %q after %d honest proofs, want the replayed proof", pr2, honestCalls)
	}
}

func TestPartial(t *testing.T) {
	p := testProfile(t)
	d, _ := NewPartial(gpuclass.H100SXM, Options{Percent: 25})
	n := devicetest.Nonce(3)
	c, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: n})
	if err != nil {
		t.Fatal(err)
	}
	cells, root := reference(t, p, n)
	if c.Root == root {
		t.Fatal("partial device produced the honest root")
	}
	got, _ := d.Results(n)
	cut := p.M / 4 * p.N
	if !slices.Equal(got[:cut], cells[:cut]) {
		t.Error("computed part differs from the reference")
	}
	for _, v := range got[cut:] {
		if v != 0 {
			t.Fatal("uncomputed part is not zero")
		}
	}
}

// TestGrinderAndAbandoner checks the two adversaries that compute part of
// the work: the grinder commits to a root whose samples under its guess
// (the last seed it saw) fall on computed cells, and the abandoner proves
// only when the real samples do.
func TestGrinderAndAbandoner(t *testing.T) {
	p := testProfile(t)
	node := prover.Address{1, 2, 3}
	ctx := context.Background()
	g, err := NewGrinder(gpuclass.H100SXM, Options{Seed: []byte("grind"), Node: node})
	if err != nil {
		t.Fatal(err)
	}
	guess := prover.SampleSeed{9, 9, 9}
	calls := 0
	honest := func(context.Context) ([]byte, error) { calls++; return []byte("proof"), nil }
	n0 := devicetest.Nonce(10)
	c0, err := g.Run(ctx, attest.Workload{Profile: p, Nonce: n0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Proof(ctx, attest.Workload{Profile: p, Nonce: n0}, attest.Sampling{Root: c0.Root, Seed: guess}, node, honest); err != nil || calls != 1 {
		t.Fatalf("grinder proof: %v after %d honest calls", err, calls)
	}
	half := p.Cells() / 2
	hits := 0
	for i := range 8 {
		n := devicetest.Nonce(20 + i)
		c, err := g.Run(ctx, attest.Workload{Profile: p, Nonce: n})
		if err != nil {
			t.Fatal(err)
		}
		cells, _ := g.Results(n)
		tree, err := prover.NewTree(p, cells)
		if err != nil || tree.Root() != c.Root {
			t.Fatalf("grinder's root is not the root of its results (%v)", err)
		}
		if prover.SamplesHit(p, c.Root, guess, n, node, func(c int) bool { return c < half }) {
			hits++
		}
	}
	// 64 tries at 1/16 each find a hitting root with probability 98%.
	if hits < 6 {
		t.Fatalf("grinder found a root hitting its guess in %d of 8 runs", hits)
	}

	a, err := NewAbandoner(gpuclass.H100SXM, Options{Seed: []byte("abandon")})
	if err != nil {
		t.Fatal(err)
	}
	abandoned, proved := 0, 0
	for i := range 24 {
		n := devicetest.Nonce(40 + i)
		c, err := a.Run(ctx, attest.Workload{Profile: p, Nonce: n})
		if err != nil {
			t.Fatal(err)
		}
		seed := prover.SampleSeed{byte(i), 1}
		hit := prover.SamplesHit(p, c.Root, seed, n, node, func(c int) bool { return c < half })
		_, err = a.Proof(ctx, attest.Workload{Profile: p, Nonce: n}, attest.Sampling{Root: c.Root, Seed: seed}, node, honest)
		switch {
		case hit && err == nil:
			proved++
		case !hit && errors.Is(err, ErrAbandoned):
			abandoned++
		default:
			t.Fatalf("run %d: samples hit %v, proof error %v", i, hit, err)
		}
	}
	if abandoned == 0 {
		t.Fatal("the abandoner never abandoned")
	}
}

func TestGarbage(t *testing.T) {
	p := testProfile(t)
	a, _ := NewGarbage(gpuclass.H100SXM, Options{Seed: []byte("g")})
	b, _ := NewGarbage(gpuclass.H100SXM, Options{Seed: []byte("g")})
	n := devicetest.Nonce(4)
	ca, err := a.Run(context.Background(), attest.Workload{Profile: p, Nonce: n})
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := b.Run(context.Background(), attest.Workload{Profile: p, Nonce: n})
	if _, root := reference(t, p, n); ca.Root == root {
		t.Fatal("garbage device produced the honest root")
	}
	if ca.Root != cb.Root {
		t.Fatal("garbage is not deterministic for a seed")
	}
	if _, err := a.Results(n); !errors.Is(err, attest.ErrNoResults) {
		t.Fatalf("garbage device holds results: %v", err)
	}
	pr, err := a.Proof(context.Background(), attest.Workload{Profile: p, Nonce: n}, attest.Sampling{}, prover.Address{}, nil)
	if err != nil || len(pr) != verifier.ProofSize {
		t.Fatalf("garbage proof of %d bytes, %v; want %d", len(pr), err, verifier.ProofSize)
	}
	if _, err := verifier.DecodeProof(pr); err == nil {
		t.Log("garbage proof happened to decode; verification would still reject it")
	}
}

func TestFlaky(t *testing.T) {
	p := testProfile(t)
	pattern := func() []bool {
		d, _ := NewFlaky(gpuclass.RTX4090, Options{Seed: []byte("f"), Percent: 50})
		var out []bool
		for i := range 24 {
			_, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(i)})
			if err != nil && !errors.Is(err, attest.ErrUnavailable) {
				t.Fatalf("run %d: %v", i, err)
			}
			out = append(out, err != nil)
		}
		return out
	}
	a, b := pattern(), pattern()
	if !slices.Equal(a, b) {
		t.Fatal("flaky outages are not deterministic for a seed")
	}
	fails := 0
	for _, f := range a {
		if f {
			fails++
		}
	}
	if fails == 0 || fails == len(a) {
		t.Fatalf("%d of %d runs failed at 50%%", fails, len(a))
	}
}

func TestSilent(t *testing.T) {
	p := testProfile(t)
	d, err := New("silent-h100", Options{Seed: []byte("s"), Answers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(i)}); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.Run(ctx, attest.Workload{Profile: p, Nonce: devicetest.Nonce(2)}); !errors.Is(err, attest.ErrUnavailable) {
		t.Fatalf("third run after two answers: got %v, want a silent device", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the silent run returned before its challenge was given up")
	}
}

func BenchmarkHonestRun(b *testing.B) {
	p := testProfile(b)
	d, _ := NewHonest(gpuclass.H100SXM, Options{TimeScale: 0.001})
	i := 0
	for b.Loop() {
		i++
		if _, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzNew parses arbitrary device profiles (command-line input): it must
// not panic, and every error must name the problem.
func FuzzNew(f *testing.F) {
	for _, s := range []string{"h100", "spoof-h100", "rtx3090-as-h100", "clone-a100", "replay-4090",
		"partial-l40s", "garbage-h200", "flaky-cpu", "-as-", "spoof-", "a-as-b-as-c", "H100-SXM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, profile string) {
		d, err := New(profile, Options{})
		if err != nil {
			if !errors.Is(err, gpuclass.ErrUnknownClass) {
				t.Fatalf("New(%q) error %v does not wrap ErrUnknownClass", profile, err)
			}
			return
		}
		if _, ok := d.(attest.ClassClaimer); !ok {
			t.Fatalf("New(%q) = %T claims no class", profile, d)
		}
	})
}

// The conformance suite must fail adversarial devices. Each case runs the
// suite in a child test process (a failing subtest cannot be contained in
// this one) and checks that it fails for the documented reason.
func TestConformanceRejectsAdversaries(t *testing.T) {
	if profile := os.Getenv("SIM_DEVICETEST_PROFILE"); profile != "" {
		devicetest.Run(t, func(t *testing.T) attest.Device {
			d, err := New(profile, Options{Seed: []byte("adversary")})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, devicetest.Config{})
		return
	}
	tests := []struct {
		profile string
		want    string
	}{
		{"garbage-h100", "reference root"},
		{"partial-h100", "reference root"},
		{"replay-h100", "reference root"},
		{"flaky-h100", "device unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceRejectsAdversaries$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SIM_DEVICETEST_PROFILE="+tc.profile)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the conformance suite passed adversary %s:\n%s", tc.profile, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("suite failed %s without mentioning %q:\n%s", tc.profile, tc.want, out)
			}
		})
	}
}
