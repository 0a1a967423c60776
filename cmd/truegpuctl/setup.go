package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/truegpu/truegpu/prover"
)

func init() {
	var (
		profile string
		out     string
		dev     bool
	)
	register(&command{
		Name:  "setup",
		Usage: "-unsafe-dev [-profile P] -out DIR",
		Short: "write deterministic UNSAFE dev keys for a profile",
		Long: `
Setup writes DIR/PROFILE-vN.pk and DIR/PROFILE-vN.vk for the profile from
the deterministic dev setup. Its toxic waste is public: anyone can forge
proofs under these keys. Use them only for tests and local development;
production keys come from 'truegpuctl ceremony'. -unsafe-dev is required
to say so.`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&out, "out", "", "output `dir`ectory")
			fs.BoolVar(&dev, "unsafe-dev", false, "confirm that UNSAFE dev keys are wanted")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("setup takes no arguments, got %q", args)
			}
			if !dev {
				return usageError("setup only makes UNSAFE dev keys; pass -unsafe-dev, or run 'truegpuctl ceremony' for production keys")
			}
			if out == "" {
				return usageError("-out DIR is required")
			}
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			warnUnsafe(ctx.Stderr, p)
			start := time.Now()
			pk, _, err := prover.UnsafeDevKeys(p, "")
			if err != nil {
				return err
			}
			base, err := writeKeys(out, pk)
			if err != nil {
				return err
			}
			fmt.Fprintf(ctx.Stdout, "%s: %d constraints, setup %v, keys %s.pk and %s.vk\n",
				p.ID(), pk.Constraints(), time.Since(start).Round(time.Millisecond), base, base)
			return nil
		},
	})
}
