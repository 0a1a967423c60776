package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// loadBundle reads a bundle and returns its profile, proof and public
// inputs.
func loadBundle(path string) (*prover.Profile, *verifier.Proof, verifier.PublicInputs, error) {
	var pub verifier.PublicInputs
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, pub, err
	}
	var b proofBundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, nil, pub, fmt.Errorf("%s: not a proof bundle: %w", path, err)
	}
	p, err := profileByID(b.Profile)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	var nonce prover.Nonce
	var node prover.Address
	var root [32]byte
	var seed prover.SampleSeed
	fields := []struct {
		name string
		s    string
		dst  []byte
	}{{"nonce", b.Nonce, nonce[:]}, {"node", b.Node, node[:]}, {"root", b.Root, root[:]}, {"seed", b.Seed, seed[:]}}
	for _, f := range fields {
		v, err := decodeHex(f.name, f.s, len(f.dst))
		if err != nil {
			return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
		}
		copy(f.dst, v)
	}
	raw, err := decodeHex("proof", b.Proof, verifier.ProofSize)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	proof, err := verifier.DecodeProof(raw)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	pub, err = p.PublicInputs(nonce, node, root, seed)
	if err != nil {
		return nil, nil, pub, fmt.Errorf("%s: %w", path, err)
	}
	return p, proof, pub, nil
}

// errVerifyFailed marks a run of "verify" where some proof did not verify.
var errVerifyFailed = errors.New("some proofs did not verify")

func init() {
	var keys keyFlags
	register(&command{
		Name:  "verify",
		Usage: "(-keys DIR | -vk FILE | -unsafe-dev) BUNDLE...",
		Short: "verify work-proof bundles (batched per profile)",
		Long: `
Verify checks proof bundles written by 'truegpuctl prove'. Bundles of the
same profile are verified together by batch verification; each bundle is
reported as ok or FAIL. The public inputs are rebuilt from the bundle's
nonce, node, root and sample seed, so this checks a proof for the challenge the bundle
names; an oracle builds them from its own record of the challenge instead.

Exit status: 0 all proofs verify, 1 some do not or a bundle is malformed.`,
		Flags: func(fs *flag.FlagSet) { keys.register(fs, true) },
		Run: func(ctx *runContext, args []string) error {
			if len(args) == 0 {
				return usageError("name at least one bundle file")
			}
			if err := keys.check(); err != nil {
				return err
			}
			type group struct {
				p      *prover.Profile
				idx    []int
				proofs []*verifier.Proof
				pubs   []verifier.PublicInputs
			}
			groups := map[string]*group{}
			var order []string
			for i, path := range args {
				p, proof, pub, err := loadBundle(path)
				if err != nil {
					return err
				}
				g, ok := groups[p.ID()]
				if !ok {
					g = &group{p: p}
					groups[p.ID()] = g
					order = append(order, p.ID())
				}
				g.idx = append(g.idx, i)
				g.proofs = append(g.proofs, proof)
				g.pubs = append(g.pubs, pub)
			}
			status := make([]string, len(args))
			failed := 0
			for _, id := range order {
				g := groups[id]
				vk, err := keys.verifyingKey(ctx, g.p)
				if err != nil {
					return err
				}
				bad, err := verifier.VerifyBatch(vk, g.proofs, g.pubs)
				if err != nil {
					return err
				}
				for _, i := range g.idx {
					status[i] = "ok"
				}
				for _, b := range bad {
					status[g.idx[b]] = "FAIL"
					failed++
				}
			}
			for i, path := range args {
				fmt.Fprintf(ctx.Stdout, "%-4s %s\n", status[i], path)
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d", errVerifyFailed, failed, len(args))
			}
			return nil
		},
	})
}
