package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
)

type selftestFlags struct {
	devices deviceFlags
	profile string
	runs    int
}

func init() {
	register(&command{
		Name:  "selftest",
		Usage: "[--device ...] [--profile test|demo|standard] [--runs N]",
		Short: "run the workload on each device, check it against the reference and compare its time with the class deadline",
		Flags: func(fs *flag.FlagSet) any {
			s := &selftestFlags{}
			s.devices.register(fs)
			fs.StringVar(&s.profile, "profile", "demo", "workload profile")
			fs.IntVar(&s.runs, "runs", 3, "runs per device")
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
		var times []time.Duration
		for n := range s.runs {
			var nonce prover.Nonce
			copy(nonce[:], fmt.Sprintf("selftest %d %d %d", i, n, time.Now().UnixNano()))
			c, err := d.Device.Run(ctx, attest.Workload{Profile: p, Nonce: nonce})
			if err != nil {
				return fmt.Errorf("device %d run %d: %w", i, n, err)
			}
			times = append(times, c.Elapsed)
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
		if !r.MatchesRef {
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
		return fmt.Errorf("%d device(s) computed results that differ from the reference implementation", failed)
	}
	return nil
}
