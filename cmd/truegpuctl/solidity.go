package main

import (
	"bytes"
	"flag"

	"github.com/truegpu/truegpu/verifier"
)

func init() {
	var (
		profile string
		out     string
		keys    keyFlags
	)
	register(&command{
		Name:  "solidity",
		Usage: "[-profile P] (-keys DIR | -vk FILE | -unsafe-dev) [-out FILE]",
		Short: "export the Solidity work-proof verifier for a profile",
		Long: `
Solidity writes a Solidity contract (gnark's Groth16 BN254 verifier) that
verifies work proofs of the profile under the given verifying key. Its
verifyProof takes the proof as uint256[8] (A.x, A.y, B.x.a1, B.x.a0,
B.y.a1, B.y.a0, C.x, C.y) and the public inputs as uint256[6] (nonceHi,
nonceLo, node, root, seed, digest; see docs/PROTOCOL.md).`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&out, "out", "", "output `file` (default: stdout)")
			keys.register(fs, true)
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("solidity takes no arguments, got %q", args)
			}
			if err := keys.check(); err != nil {
				return err
			}
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			vk, err := keys.verifyingKey(ctx, p)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := verifier.ExportSolidity(vk, &buf); err != nil {
				return err
			}
			return writeOut(ctx, out, buf.Bytes())
		},
	})
}
