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

// hasher is the protocol hash H (hash.go) inside a circuit.
type hasher func(a, b frontend.Variable) frontend.Variable

// newHasher returns H for api: the Poseidon2 compression with the
// protocol's parameters.
func newHasher(api frontend.API) (hasher, error) {
	perm, err := p2.NewPoseidon2FromParameters(api, Poseidon2Width, Poseidon2FullRounds, Poseidon2PartialRounds)
	if err != nil {
		return nil, err
	}
	return func(a, b frontend.Variable) frontend.Variable { return perm.Compress(a, b) }, nil
}

// chain returns Chain(x0, xs...) = H(...H(H(x0, x1), x2)..., xn).
func (h hasher) chain(x0 frontend.Variable, xs ...frontend.Variable) frontend.Variable {
	s := x0
	for _, x := range xs {
		s = h(s, x)
	}
	return s
}

// Define implements frontend.Circuit. It composes the gadgets: the PRG
// gadget (gadget_prg.go) gives the sample positions and re-derives the
// row of A and the column of B; the Merkle gadget (gadget_merkle.go)
// packs the sampled word and checks its opening against the root.
func (c *Circuit) Define(api frontend.API) error {
	p := c.profile
	if p == nil {
		return fmt.Errorf("%w: circuit built without NewCircuit", ErrInvalidProfile)
	}
	if len(c.Samples) != p.Q {
		return fmt.Errorf("%w: circuit has %d samples, profile %s needs %d", ErrShape, len(c.Samples), p.ID(), p.Q)
	}
	for s := range c.Samples {
		if n := len(c.Samples[s].Siblings); n != p.Depth() {
			return fmt.Errorf("%w: sample %d has %d siblings, profile %s needs %d", ErrShape, s, n, p.ID(), p.Depth())
		}
	}
	h, err := newHasher(api)
	if err != nil {
		return err
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

	seed := circuitSeed(h, c.NonceHi, c.NonceLo, c.Digest)
	base := circuitSampleBase(h, c.Root, c.Seed, c.NonceHi, c.NonceLo, c.Node)

	logN := log2(p.N)
	logCells := log2(p.Cells())
	two32 := new(big.Int).Lsh(big.NewInt(1), 32)
	for s := range c.Samples {
		sw := &c.Samples[s]
		// The low bits of h_s: lane, word index, column and row.
		cellBits := circuitSampleBits(api, h, base, s, logCells)
		row := bits.FromBinary(api, cellBits[logN:], bits.WithUnconstrainedInputs())
		col := bits.FromBinary(api, cellBits[:logN], bits.WithUnconstrainedInputs())

		a := circuitPRGVector(api, h, seed, domainA, row, p.K)
		b := circuitPRGVector(api, h, seed, domainB, col, p.K)
		var dot frontend.Variable = 0
		for k := range a {
			dot = api.MulAcc(dot, a[k], b[k])
		}

		// The word's cells are uint32; the sampled lane equals dot mod 2^32.
		word := circuitPackWord(api, sw.Word)
		lane := api.Lookup2(cellBits[0], cellBits[1], sw.Word[0], sw.Word[1], sw.Word[2], sw.Word[3])
		diff := api.Sub(lane, dot)
		api.AssertIsEqual(api.Mul(diff, api.Sub(diff, two32)), 0)

		// Merkle opening of the word at index cell>>2.
		circuitAssertOpening(api, h, c.Root, word, cellBits[2:], sw.Siblings)
	}
	return nil
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
