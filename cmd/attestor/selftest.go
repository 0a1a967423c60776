package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

type selftestFlags struct {
	devices     deviceFlags
	profile     string
	runs        int
	timedTarget uint64
	memTarget   uint64
}

func init() {
	register(&command{
		Name:  "selftest",
		Usage: "[--device ...] [--profile test|demo|standard] [--runs N] [--timed-target MS] [--memory-target MS]",
		Short: "run the workload on each device, check it against the reference and compare its time with the class deadline",
		Flags: func(fs *flag.FlagSet) any {
			s := &selftestFlags{}
			s.devices.register(fs)
			fs.StringVar(&s.profile, "profile", "demo", "workload profile")
			fs.IntVar(&s.runs, "runs", 3, "runs per device")
			fs.Uint64Var(&s.timedTarget, "timed-target", 0, "also run the timed phase sized for this many ms on the device's class (4000 in production; docs/PROTOCOL.md section 11), check its openings and compare its time with the deadline")
			fs.Uint64Var(&s.memTarget, "memory-target", 0, "also run the memory phase whose walk is sized for this many ms on the device's class (4000 in production; docs/PROTOCOL.md section 12): fill the table, walk it, check the walk's openings and compare the walk's time with its deadline")
			return s
		},
		Run: runSelftest,
	})
}

// selftestResult is one device's line of `attestor selftest`.
type selftestResult struct {
	Index          int     `json:"index"`
	UUID           string  `json:"uuid"`
	Class          string  `json:"class"`
	Profile        string  `json:"profile"`
	Runs           int     `json:"runs"`
	MatchesRef     bool    `json:"matches_reference"`
	MedianMillis   float64 `json:"median_ms"`
	ExpectedMillis uint64  `json:"class_expected_ms"`
	DeadlineMillis uint64  `json:"class_deadline_ms"`
	MeetsDeadline  bool    `json:"meets_deadline"`
	// The timed phase, when --timed-target is set.
	Timed *timedSelftest `json:"timed,omitempty"`
	// The memory phase, when --memory-target is set.
	Memory *memorySelftest `json:"memory,omitempty"`
}

// memorySelftest is the memory phase's part of a selftest line.
type memorySelftest struct {
	Dims           string  `json:"dims"`
	OpeningsCheck  bool    `json:"openings_check"`
	MedianMillis   float64 `json:"walk_median_ms"`
	ExpectedMillis uint64  `json:"walk_class_expected_ms"`
	DeadlineMillis uint64  `json:"walk_class_deadline_ms"`
	MeetsDeadline  bool    `json:"walk_meets_deadline"`
}

// timedSelftest is the timed phase's part of a selftest line.
type timedSelftest struct {
	Dims           string  `json:"dims"`
	OpeningsCheck  bool    `json:"openings_check"`
	MedianMillis   float64 `json:"median_ms"`
	ExpectedMillis uint64  `json:"class_expected_ms"`
	DeadlineMillis uint64  `json:"class_deadline_ms"`
	MeetsDeadline  bool    `json:"meets_deadline"`
}

func runSelftest(ctx context.Context, e *env, opts any, args []string) error {
	s := opts.(*selftestFlags)
	if s.runs < 1 {
		return usageError("--runs %d: need at least 1", s.runs)
	}
	p, err := prover.ProfileByName(s.profile)
	if err != nil {
		return usageError("--profile: %v", err)
	}
	devs, closeAll, err := openDevices(&s.devices, "selftest")
	if err != nil {
		return err
	}
	defer closeAll()
	var out []selftestResult
	failed := 0
	for i, d := range devs {
		fp, err := d.Device.Fingerprint(ctx)
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		r := selftestResult{Index: i, UUID: fp.UUID, Profile: p.ID(), Runs: s.runs, MatchesRef: true}
		var class gpuclass.Class
		if r.Class, err = attest.DeviceClass(d, fp); err == nil {
			class, _ = gpuclass.Lookup(r.Class)
			r.ExpectedMillis = class.ExpectedMillis(p.M, p.N, p.K)
			r.DeadlineMillis = class.Deadline(p.M, p.N, p.K)
		}
		var spec timed.Spec
		if s.timedTarget > 0 {
			if r.Class == "" {
				return fmt.Errorf("device %d: --timed-target needs the device's class: %w", i, err)
			}
			m, n, k := class.TimedDims(s.timedTarget)
			spec = timed.Spec{M: m, N: n, K: k}
			exp := class.TimedExpectedMillis(m, n, k)
			r.Timed = &timedSelftest{Dims: fmt.Sprintf("%d×%d×%d", m, n, k), OpeningsCheck: true, ExpectedMillis: exp,
				DeadlineMillis: gpuclass.TimedDeadline(class.ExpectedMillis(p.M, p.N, p.K) + exp)}
			fmt.Fprintf(e.Stderr, "device %d (%s): timed phase %s, expected %d ms, deadline %d ms\n", i, r.Class, r.Timed.Dims, exp, r.Timed.DeadlineMillis)
		}
		var mspec memwalk.Spec
		var walker attest.Walker
		if s.memTarget > 0 {
			if r.Class == "" {
				return fmt.Errorf("device %d: --memory-target needs the device's class: %w", i, err)
			}
			var ok bool
			if walker, ok = d.Device.(attest.Walker); !ok {
				return fmt.Errorf("device %d: this backend does not run the memory phase", i)
			}
			b, l, st := class.WalkDims(s.memTarget)
			mspec = memwalk.Spec{Blocks: b, Lanes: l, Steps: st}
			exp := class.WalkExpectedMillis(b, l, st)
			r.Memory = &memorySelftest{Dims: fmt.Sprintf("%d blocks (%.1f GiB), %d lanes × %d steps", b, float64(mspec.TableBytes())/(1<<30), l, st),
				OpeningsCheck: true, ExpectedMillis: exp, DeadlineMillis: gpuclass.TimedDeadline(exp)}
			fmt.Fprintf(e.Stderr, "device %d (%s): memory phase %s, walk expected %d ms, deadline %d ms\n", i, r.Class, r.Memory.Dims, exp, r.Memory.DeadlineMillis)
			if r.Timed != nil {
				// The fill rides with the first commitment.
				r.Timed.DeadlineMillis = gpuclass.TimedDeadline(class.ExpectedMillis(p.M, p.N, p.K) + r.Timed.ExpectedMillis + class.FillExpectedMillis(b))
			}
		}
		var times, walks []time.Duration
		for n := range s.runs {
			var nonce prover.Nonce
			copy(nonce[:], fmt.Sprintf("selftest %d %d %d", i, n, time.Now().UnixNano()))
			w := attest.Workload{Profile: p, Nonce: nonce, Timed: spec, TimedModel: spec, Memory: mspec, MemoryModel: mspec}
			c, err := d.Device.Run(ctx, w)
			if err != nil {
				return fmt.Errorf("device %d run %d: %w", i, n, err)
			}
			times = append(times, c.Elapsed)
			if r.Memory != nil {
				var seed, check [memwalk.SeedSize]byte
				rand.Read(seed[:])
				rand.Read(check[:])
				start := time.Now()
				root, err := walker.Walk(ctx, w, seed)
				if err != nil {
					return fmt.Errorf("device %d run %d: memory phase walk: %w", i, n, err)
				}
				walks = append(walks, time.Since(start))
				o, err := walker.OpenWalk(nonce, check)
				if err == nil {
					err = memwalk.Verify(mspec, nonce, c.TableRoot, seed, root, check, o)
				}
				if err != nil {
					fmt.Fprintf(e.Stderr, "device %d run %d: memory phase: %v\n", i, n, err)
					r.Memory.OpeningsCheck = false
				}
			}
			if r.Timed != nil {
				// The whole product is too large to recompute here: check
				// the device the way the oracle does, by opening the cells
				// a random seed selects.
				var seed [timed.SeedSize]byte
				rand.Read(seed[:])
				o, err := d.Device.OpenTimed(nonce, seed)
				if err == nil {
					err = timed.Verify(spec, nonce, c.TimedRoot, seed, o)
				}
				if err != nil {
					fmt.Fprintf(e.Stderr, "device %d run %d: timed phase: %v\n", i, n, err)
					r.Timed.OpeningsCheck = false
				}
			}
			tree, err := prover.NewTree(p, prover.Compute(p, nonce))
			if err != nil {
				return err
			}
			if tree.Root() != c.Root {
				r.MatchesRef = false
			}
		}
		slices.Sort(times)
		med := times[len(times)/2]
		r.MedianMillis = float64(med.Microseconds()) / 1000
		r.MeetsDeadline = r.DeadlineMillis > 0 && uint64(med.Milliseconds()) <= r.DeadlineMillis
		if r.Timed != nil {
			// The run's time covers both phases; the timed deadline is the
			// one that applies to a challenge with a timed phase.
			r.Timed.MedianMillis = r.MedianMillis
			r.Timed.MeetsDeadline = uint64(med.Milliseconds()) <= r.Timed.DeadlineMillis
			r.MeetsDeadline = r.Timed.MeetsDeadline
		}
		if r.Memory != nil {
			slices.Sort(walks)
			wm := walks[len(walks)/2]
			r.Memory.MedianMillis = float64(wm.Microseconds()) / 1000
			r.Memory.MeetsDeadline = uint64(wm.Milliseconds()) <= r.Memory.DeadlineMillis
		}
		if !r.MatchesRef || (r.Timed != nil && !r.Timed.OpeningsCheck) || (r.Memory != nil && !r.Memory.OpeningsCheck) {
			failed++
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d device(s) computed results that differ from the reference implementation (or timed or memory phases that do not check)", failed)
	}
	return nil
}
