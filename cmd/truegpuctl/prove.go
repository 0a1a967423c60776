package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/truegpu/truegpu/prover"
)

func init() {
	var (
		profile  string
		nonceHex string
		seedHex  string
		nodeHex  string
		out      string
		keys     keyFlags
	)
	register(&command{
		Name:  "prove",
		Usage: "[-profile P] [-nonce HEX] [-seed HEX] -node HEX (-keys DIR | -unsafe-dev) [-out FILE]",
		Short: "run a work challenge locally and prove it",
		Long: `
Prove runs the seeded GEMM challenge of a profile on the CPU with the
reference implementation, commits to the results, derives the sample
indices from (root, sample seed, nonce, node) and proves them. It writes a
JSON bundle (profile, digest, nonce, node, root, seed, proof) for
'truegpuctl verify'. Without -nonce a random nonce is drawn; without -seed
a random sample seed, standing in for the one an oracle draws when it
records the root.`,
		Flags: func(fs *flag.FlagSet) {
			profileFlag(fs, &profile)
			fs.StringVar(&nonceHex, "nonce", "", "challenge nonce, 32 bytes `hex` (default: random)")
			fs.StringVar(&seedHex, "seed", "", "sample seed, 16 bytes `hex` (default: random)")
			fs.StringVar(&nodeHex, "node", "", "node address, 20 bytes `hex`")
			fs.StringVar(&out, "out", "", "bundle output `file` (default: stdout)")
			keys.register(fs, false)
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) != 0 {
				return usageError("prove takes no arguments, got %q", args)
			}
			if err := keys.check(); err != nil {
				return err
			}
			p, err := profileByID(profile)
			if err != nil {
				return err
			}
			var nonce prover.Nonce
			if nonceHex == "" {
				if _, err := rand.Read(nonce[:]); err != nil {
					return err
				}
			} else {
				b, err := decodeHex("-nonce", nonceHex, 32)
				if err != nil {
					return usageError("%v", err)
				}
				copy(nonce[:], b)
			}
			var seed prover.SampleSeed
			if seedHex == "" {
				if _, err := rand.Read(seed[:]); err != nil {
					return err
				}
			} else {
				b, err := decodeHex("-seed", seedHex, prover.SampleSeedSize)
				if err != nil {
					return usageError("%v", err)
				}
				copy(seed[:], b)
			}
			var node prover.Address
			b, err := decodeHex("-node", nodeHex, 20)
			if err != nil {
				return usageError("%v", err)
			}
			copy(node[:], b)
			pk, err := keys.provingKey(ctx, p)
			if err != nil {
				return err
			}
			t0 := time.Now()
			cells := prover.Compute(p, nonce)
			t1 := time.Now()
			tree, err := prover.NewTree(p, cells)
			if err != nil {
				return err
			}
			t2 := time.Now()
			proof, err := prover.ProveTree(pk, tree, nonce, node, seed)
			if err != nil {
				return err
			}
			t3 := time.Now()
			root := tree.Root()
			d := p.Digest()
			bundle := proofBundle{
				Profile: p.ID(),
				Digest:  "0x" + hex.EncodeToString(d[:]),
				Nonce:   "0x" + hex.EncodeToString(nonce[:]),
				Node:    "0x" + hex.EncodeToString(node[:]),
				Root:    "0x" + hex.EncodeToString(root[:]),
				Seed:    "0x" + hex.EncodeToString(seed[:]),
				Proof:   "0x" + hex.EncodeToString(proof),
			}
			data, err := json.MarshalIndent(bundle, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(ctx.Stderr, "%s: compute %v, commit %v, prove %v (%d constraints), proof %d bytes\n",
				p.ID(), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond),
				t3.Sub(t2).Round(time.Millisecond), pk.Constraints(), len(proof))
			return writeOut(ctx, out, append(data, '\n'))
		},
	})
}
