// Package devicetest is the conformance suite for implementations of
// attest.Device, in the style of testing/slogtest: every honest backend
// (CPU reference, NVML-identified, CUDA, honest simulated devices) must
// pass Run. The suite checks identity stability, that every commitment is
// bit-identical to the reference root of package prover for the same
// nonce, that results are held for proving, cancellation, concurrent use
// and the Close contract.
//
// Adversarial simulated devices deliberately fail parts of it; their own
// tests show which.
package devicetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
)

// Config adjusts the suite. The zero value runs everything with the
// "test" profile.
type Config struct {
	// Profile is the workload profile to run; nil means "test".
	Profile *prover.Profile
	// Timeout bounds each Run call; zero means one minute.
	Timeout time.Duration
}

var knownFields = []string{
	attest.FieldSerial, attest.FieldBoardPartNumber, attest.FieldBoardID, attest.FieldPCIInfo,
	attest.FieldMemoryTotal, attest.FieldVBIOSVersion, attest.FieldDriverVersion,
	attest.FieldCUDADriverVersion, attest.FieldComputeCapability, attest.FieldMaxSMClock,
	attest.FieldMaxMemoryClock, attest.FieldPowerLimit, attest.FieldMIGMode, attest.FieldCCMode,
	attest.FieldTemperature, attest.FieldPower, attest.FieldSMClock, attest.FieldMemoryClock,
	attest.FieldUtilization, attest.FieldMemoryUsed,
}

// reference computes and caches the reference cells and root per nonce.
type reference struct {
	p  *prover.Profile
	mu sync.Mutex
	m  map[prover.Nonce]refResult
}

type refResult struct {
	cells []int32
	root  [32]byte
}

func (r *reference) get(t *testing.T, n prover.Nonce) refResult {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.m[n]; ok {
		return res
	}
	cells := prover.Compute(r.p, n)
	tree, err := prover.NewTree(r.p, cells)
	if err != nil {
		t.Fatalf("reference commitment for %s: %v", r.p.ID(), err)
	}
	res := refResult{cells: cells, root: tree.Root()}
	r.m[n] = res
	return res
}

// Nonce returns a deterministic test nonce.
func Nonce(i int) prover.Nonce {
	var n prover.Nonce
	copy(n[:], fmt.Sprintf("devicetest nonce %d", i))
	n[31] = byte(i)
	return n
}

// Run runs the conformance suite. newDevice is called once per subtest
// and must return a fresh, open device; the suite closes it.
func Run(t *testing.T, newDevice func(t *testing.T) attest.Device, cfg Config) {
	t.Helper()
	if cfg.Profile == nil {
		p, err := prover.ProfileByName("test")
		if err != nil {
			t.Fatalf("devicetest: %v", err)
		}
		cfg.Profile = p
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Minute
	}
	ref := &reference{p: cfg.Profile, m: map[prover.Nonce]refResult{}}
	open := func(t *testing.T) attest.Device {
		d := newDevice(t)
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	run := func(t *testing.T, d attest.Device, n prover.Nonce) attest.Commitment {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
		defer cancel()
		c, err := d.Run(ctx, attest.Workload{Profile: cfg.Profile, Nonce: n})
		if err != nil {
			t.Fatalf("Run(%s, nonce %x): %v", cfg.Profile.ID(), n[:4], err)
		}
		return c
	}
	cases := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"Fingerprint", func(t *testing.T) {
			d := open(t)
			ctx := context.Background()
			a, err := d.Fingerprint(ctx)
			if err != nil {
				t.Fatalf("Fingerprint: %v", err)
			}
			if a.UUID == "" || a.Name == "" {
				t.Errorf("Fingerprint has empty UUID %q or name %q", a.UUID, a.Name)
			}
			seen := map[string]bool{}
			for _, f := range a.Unsupported {
				if !slices.Contains(knownFields, f) {
					t.Errorf("Unsupported lists unknown field %q", f)
				}
				if seen[f] {
					t.Errorf("Unsupported lists %q twice", f)
				}
				seen[f] = true
			}
			b, err := d.Fingerprint(ctx)
			if err != nil {
				t.Fatalf("second Fingerprint: %v", err)
			}
			if !a.Equal(b) {
				t.Errorf("Fingerprint not stable:\n%+v\n%+v", a, b)
			}
			b.Unsupported = append(b.Unsupported, "mutated")
			if c, _ := d.Fingerprint(ctx); !a.Equal(c) {
				t.Errorf("mutating a returned fingerprint changed the device's")
			}
		}},
		{"Telemetry", func(t *testing.T) {
			d := open(t)
			tel, err := d.Telemetry(context.Background())
			if err != nil {
				t.Fatalf("Telemetry: %v", err)
			}
			for _, f := range tel.Unsupported {
				if !slices.Contains(knownFields, f) {
					t.Errorf("Telemetry.Unsupported lists unknown field %q", f)
				}
			}
		}},
		{"RunMatchesReference", func(t *testing.T) {
			d := open(t)
			var roots [][32]byte
			for i := range 2 {
				n := Nonce(i)
				want := ref.get(t, n)
				c := run(t, d, n)
				if c.Root != want.root {
					t.Fatalf("nonce %d: root %x, reference root %x", i, c.Root, want.root)
				}
				if c.Elapsed < 0 {
					t.Errorf("nonce %d: negative elapsed %v", i, c.Elapsed)
				}
				cells, err := d.Results(n)
				if err != nil {
					t.Fatalf("Results after Run: %v", err)
				}
				if !slices.Equal(cells, want.cells) {
					t.Fatalf("nonce %d: results differ from the reference", i)
				}
				roots = append(roots, c.Root)
			}
			if roots[0] == roots[1] {
				t.Fatalf("two nonces gave the same root %x", roots[0])
			}
		}},
		{"ResultsUnknownNonce", func(t *testing.T) {
			d := open(t)
			if _, err := d.Results(Nonce(999)); !errors.Is(err, attest.ErrNoResults) {
				t.Fatalf("Results(never run) error = %v, want ErrNoResults", err)
			}
		}},
		{"ResultsRetained", func(t *testing.T) {
			d := open(t)
			for i := range attest.MinHeldResults {
				run(t, d, Nonce(10+i))
			}
			for i := range attest.MinHeldResults {
				cells, err := d.Results(Nonce(10 + i))
				if err != nil {
					t.Fatalf("Results of run %d of the last %d: %v", i, attest.MinHeldResults, err)
				}
				if !slices.Equal(cells, ref.get(t, Nonce(10+i)).cells) {
					t.Fatalf("Results of run %d differ from the reference", i)
				}
			}
		}},
		{"InvalidWorkload", func(t *testing.T) {
			d := open(t)
			_, err := d.Run(context.Background(), attest.Workload{Nonce: Nonce(0)})
			if !errors.Is(err, attest.ErrBadWorkload) {
				t.Fatalf("Run without profile error = %v, want ErrBadWorkload", err)
			}
		}},
		{"Cancelled", func(t *testing.T) {
			d := open(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := d.Run(ctx, attest.Workload{Profile: cfg.Profile, Nonce: Nonce(20)})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run with cancelled context error = %v, want context.Canceled", err)
			}
		}},
		{"Concurrent", func(t *testing.T) {
			d := open(t)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 2 {
				wg.Go(func() {
					n := Nonce(30 + i)
					rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
					defer cancel()
					c, err := d.Run(rctx, attest.Workload{Profile: cfg.Profile, Nonce: n})
					if err != nil {
						errs <- fmt.Errorf("concurrent Run %d: %w", i, err)
						return
					}
					if want := ref.get(t, n).root; c.Root != want {
						errs <- fmt.Errorf("concurrent Run %d: root %x, want %x", i, c.Root, want)
					}
				})
			}
			stop := make(chan struct{})
			var readers sync.WaitGroup
			readers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := d.Fingerprint(ctx); err != nil {
						errs <- fmt.Errorf("Fingerprint during Run: %w", err)
						return
					}
					if _, err := d.Telemetry(ctx); err != nil {
						errs <- fmt.Errorf("Telemetry during Run: %w", err)
						return
					}
					_, _ = d.Results(Nonce(30))
					time.Sleep(time.Millisecond)
				}
			})
			wg.Wait()
			close(stop)
			readers.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		}},
		{"MemoryPhase", func(t *testing.T) {
			// Devices that run the memory phase (attest.Walker): the
			// table root commits to the reference table, the walk's
			// openings verify against it, and a second walk with
			// another seed is another walk.
			d := open(t)
			walker, ok := d.(attest.Walker)
			if !ok {
				t.Skip("the device does not run the memory phase")
			}
			spec := memwalk.Spec{Blocks: 64, Lanes: 32, Steps: 8}
			n := Nonce(50)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
			defer cancel()
			w := attest.Workload{Profile: cfg.Profile, Nonce: n, Memory: spec, MemoryModel: spec}
			c, err := d.Run(ctx, w)
			if err != nil {
				t.Fatalf("Run with a memory phase: %v", err)
			}
			want, err := memwalk.Fill(ctx, spec, n, 1)
			if err != nil {
				t.Fatal(err)
			}
			if c.TableRoot != want.Root() {
				t.Fatalf("table root %x, reference %x", c.TableRoot, want.Root())
			}
			seed := [memwalk.SeedSize]byte{1, 2, 3}
			root, err := walker.Walk(ctx, w, seed)
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			check := [memwalk.SeedSize]byte{9}
			op, err := walker.OpenWalk(n, check)
			if err != nil {
				t.Fatalf("OpenWalk: %v", err)
			}
			if err := memwalk.Verify(spec, n, c.TableRoot, seed, root, check, op); err != nil {
				t.Fatalf("the walk's openings do not verify: %v", err)
			}
			if _, err := walker.OpenWalk(Nonce(51), check); !errors.Is(err, attest.ErrNoResults) {
				t.Errorf("OpenWalk of a nonce never run: %v, want ErrNoResults", err)
			}
		}},
		{"Close", func(t *testing.T) {
			d := newDevice(t)
			run(t, d, Nonce(40))
			if err := d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := d.Run(context.Background(), attest.Workload{Profile: cfg.Profile, Nonce: Nonce(41)}); !errors.Is(err, attest.ErrClosed) {
				t.Errorf("Run after Close error = %v, want ErrClosed", err)
			}
			if _, err := d.Fingerprint(context.Background()); !errors.Is(err, attest.ErrClosed) {
				t.Errorf("Fingerprint after Close error = %v, want ErrClosed", err)
			}
			if _, err := d.Results(Nonce(40)); !errors.Is(err, attest.ErrClosed) {
				t.Errorf("Results after Close error = %v, want ErrClosed", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.f)
	}
}
