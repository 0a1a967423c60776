package prover

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/math/bits"
	p2 "github.com/consensys/gnark/std/permutation/poseidon2"
)

// Circuit proves that Q sampled cells of a committed result
// vector equal the seeded GEMM. Its public inputs, in this order, are
//
//	NonceHi, NonceLo  the challenge nonce as two big-endian 128-bit halves
//	Node              the node address as a big-endian 160-bit integer
//	Root              the commitment root
//	Seed              the oracle's 128-bit sample seed, drawn after the
//	                  commitment was recorded
//	Digest            the profile digest (a constant of the circuit)
//
// The circuit uses no Groth16 commitment (no api.Commit, no lookups).
type Circuit struct {
	NonceHi frontend.Variable `gnark:",public"`
	NonceLo frontend.Variable `gnark:",public"`
	Node    frontend.Variable `gnark:",public"`
	Root    frontend.Variable `gnark:",public"`
	Seed    frontend.Variable `gnark:",public"`
	Digest  frontend.Variable `gnark:",public"`

	// Samples holds one opening per sampled cell, in sample order.
	Samples []SampleWitness

	profile *Profile
}

// SampleWitness is the private witness of one sampled cell: the four cells
// (as uint32) of its leaf word and the Merkle siblings from the leaf up.
type SampleWitness struct {
	Word     [CellsPerWord]frontend.Variable
	Siblings []frontend.Variable
}

// NewCircuit returns an unassigned circuit shaped for the profile.
func NewCircuit(p *Profile) *Circuit {
	c := &Circuit{Samples: make([]SampleWitness, p.Q), profile: p}
	for i := range c.Samples {
		c.Samples[i].Siblings = make([]frontend.Variable, p.Depth())
	}
	return c
}

func bigTag(e interface{ BigInt(*big.Int) *big.Int }) *big.Int {
	return e.BigInt(new(big.Int))
}

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	p := c.profile
	if p == nil {
		return fmt.Errorf("%w: circuit built without NewCircuit", ErrInvalidProfile)
	}
	if len(c.Samples) != p.Q {
		return fmt.Errorf("%w: circuit has %d samples, profile %s needs %d", ErrShape, len(c.Samples), p.ID(), p.Q)
	}
	perm, err := p2.NewPoseidon2FromParameters(api, Poseidon2Width, Poseidon2FullRounds, Poseidon2PartialRounds)
	if err != nil {
		return err
	}
	h := func(a, b frontend.Variable) frontend.Variable { return perm.Compress(a, b) }
	chainV := func(x0 frontend.Variable, xs ...frontend.Variable) frontend.Variable {
		s := x0
		for _, x := range xs {
			s = h(s, x)
		}
		return s
	}

	// Public inputs: the digest is the profile's; the nonce halves, the
	// address and the sample seed are range-checked so their encoding is
	// injective.
	digest := p.digestElement()
	api.AssertIsEqual(c.Digest, bigTag(&digest))
	bits.ToBinary(api, c.NonceHi, bits.WithNbDigits(128))
	bits.ToBinary(api, c.NonceLo, bits.WithNbDigits(128))
	bits.ToBinary(api, c.Node, bits.WithNbDigits(160))
	bits.ToBinary(api, c.Seed, bits.WithNbDigits(8*SampleSeedSize))

	seed := chainV(bigTag(&tagSeed), c.NonceHi, c.NonceLo, c.Digest)
	base := chainV(bigTag(&tagSample), c.Root, c.Seed, c.NonceHi, c.NonceLo, c.Node)

	logN := log2(p.N)
	logCells := log2(p.Cells())
	two32 := new(big.Int).Lsh(big.NewInt(1), 32)
	for s := range c.Samples {
		sw := &c.Samples[s]
		hs := h(base, s)
		// Full canonical decomposition: the low bits of h_s are unique.
		hb := bits.ToBinary(api, hs)
		cellBits := hb[:logCells]
		row := bits.FromBinary(api, cellBits[logN:], bits.WithUnconstrainedInputs())
		col := bits.FromBinary(api, cellBits[:logN], bits.WithUnconstrainedInputs())

		a := c.prgVector(api, h, seed, domainA, row)
		b := c.prgVector(api, h, seed, domainB, col)
		var dot frontend.Variable = 0
		for k := range a {
			dot = api.MulAcc(dot, a[k], b[k])
		}

		// The word's cells are uint32; the sampled lane equals dot mod 2^32.
		var word frontend.Variable = 0
		for t := 0; t < CellsPerWord; t++ {
			bits.ToBinary(api, sw.Word[t], bits.WithNbDigits(32))
			word = api.Add(word, api.Mul(sw.Word[t], new(big.Int).Lsh(big.NewInt(1), uint(32*t))))
		}
		lane := api.Lookup2(cellBits[0], cellBits[1], sw.Word[0], sw.Word[1], sw.Word[2], sw.Word[3])
		diff := api.Sub(lane, dot)
		api.AssertIsEqual(api.Mul(diff, api.Sub(diff, two32)), 0)

		// Merkle opening of the word at index cell>>2.
		node := word
		for d, sib := range sw.Siblings {
			bit := cellBits[2+d]
			swap := api.Mul(bit, api.Sub(sib, node))
			left := api.Add(node, swap)
			right := api.Sub(sib, swap)
			node = h(left, right)
		}
		api.AssertIsEqual(node, c.Root)
	}
	return nil
}

// prgVector re-derives the K int8 values of PRG domain (sel, index) as field
// elements (negative values as r - |v|).
func (c *Circuit) prgVector(api frontend.API, h func(a, b frontend.Variable) frontend.Variable, seed frontend.Variable, sel int64, index frontend.Variable) []frontend.Variable {
	p := c.profile
	out := make([]frontend.Variable, 0, p.K)
	selPart := new(big.Int).Lsh(big.NewInt(sel), 64)
	two32 := new(big.Int).Lsh(big.NewInt(1), 32)
	for j := 0; j < p.Chunks(); j++ {
		d := api.Add(selPart, api.Mul(index, two32), j)
		out = append(out, chunkInt8s(api, h(seed, d), min(bytesPerChunk, p.K-len(out)))...)
	}
	return out
}

// chunkInt8s returns the first n int8 values of a PRG output e: byte t of
// e's canonical little-endian encoding, two's complement. The full
// decomposition of e is canonical (bits.ToBinary checks it is below r), so
// each value is the unique byte of e and lies in [-128, 127].
func chunkInt8s(api frontend.API, e frontend.Variable, n int) []frontend.Variable {
	eb := bits.ToBinary(api, e)
	out := make([]frontend.Variable, n)
	for t := range out {
		var v frontend.Variable = 0
		for b := 0; b < 7; b++ {
			v = api.Add(v, api.Mul(eb[8*t+b], 1<<b))
		}
		out[t] = api.Sub(v, api.Mul(eb[8*t+7], 128))
	}
	return out
}

func log2(v int) int {
	n := 0
	for v > 1 {
		v >>= 1
		n++
	}
	return n
}

// CompileCircuit compiles the profile's circuit to an R1CS over BN254.
func CompileCircuit(p *Profile) (constraint.ConstraintSystem, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, NewCircuit(p))
	if err != nil {
		return nil, fmt.Errorf("prover: compile circuit %s: %w", p.ID(), err)
	}
	return ccs, nil
}
