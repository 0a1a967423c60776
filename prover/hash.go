package prover

import (
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// The hash of the protocol is the Poseidon2 2-to-1 compression over the
// BN254 scalar field with gnark-crypto's default parameters (width 2, 6 full
// rounds, 50 partial rounds):
//
//	H(a, b) = P(a, b)[1] + b
//
// where P is the permutation. Chain(x0, x1, ..., xn) folds it from the left:
// H(...H(H(x0, x1), x2)..., xn).

// Poseidon2 parameters of the protocol hash: the one home of these numbers
// for the reference, the circuit and the device kernels.
const (
	Poseidon2Width         = 2
	Poseidon2FullRounds    = 6
	Poseidon2PartialRounds = 50
)

var permutation = poseidon2.NewPermutation(Poseidon2Width, Poseidon2FullRounds, Poseidon2PartialRounds)

// compress returns H(a, b).
func compress(a, b *fr.Element) fr.Element {
	x := [2]fr.Element{*a, *b}
	if err := permutation.Permutation(x[:]); err != nil {
		panic(err) // width is fixed at 2; cannot fail
	}
	var r fr.Element
	r.Add(&x[1], b)
	return r
}

// chain returns H(...H(H(x0, x1), x2)..., xn).
func chain(x0 fr.Element, xs ...fr.Element) fr.Element {
	s := x0
	for i := range xs {
		s = compress(&s, &xs[i])
	}
	return s
}

func fromUint64(v uint64) fr.Element {
	var e fr.Element
	e.SetUint64(v)
	return e
}

// tag returns the domain tag for an ASCII label: the label's bytes read as a
// big-endian integer (labels are shorter than 31 bytes).
func tag(label string) fr.Element {
	if len(label) > 31 {
		panic("prover: tag label too long: " + label)
	}
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes([]byte(label)))
	return e
}

// Domain tags. The profile and PRG-seed tags are unchanged since protocol
// version 1 (the profile version enters the digest and the digest enters
// the PRG seed); the sampling tag is version 2's, whose sample base also
// absorbs the oracle's sample seed.
var (
	tagProfile = tag("truegpu/profile/v1")
	tagSeed    = tag("truegpu/seed/v1")
	tagSample  = tag("truegpu/sample/v2")
)

// PRG domain selectors: the high part of the PRG domain word.
const (
	domainA = 1
	domainB = 2
)

// bytesPerChunk is the number of int8 values taken from one PRG output: the
// low 31 bytes of its canonical integer.
const bytesPerChunk = 31
