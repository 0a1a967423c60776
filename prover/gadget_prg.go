package prover

import (
	"math/big"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/bits"
)

// The PRG gadget: the in-circuit counterparts of the two generators the
// protocol derives from the hash, the workload PRG (seedElement,
// prgVector) and the sample positions (sampleIndices).

// circuitSeed returns the PRG seed S = Chain(TagSeed, nonceHi, nonceLo, D)
// (seedElement).
func circuitSeed(h hasher, nonceHi, nonceLo, digest frontend.Variable) frontend.Variable {
	return h.chain(bigTag(&tagSeed), nonceHi, nonceLo, digest)
}

// circuitPRGVector re-derives the k int8 values of PRG domain (sel, index)
// under seed as field elements (negative values as r - |v|), as prgVector
// does natively: chunk j is H(seed, sel·2^64 + index·2^32 + j) and gives
// up to 31 values. index must be below 2^32 for the domain word to be the
// native one; the circuit builds it from sample bits.
func circuitPRGVector(api frontend.API, h hasher, seed frontend.Variable, sel int64, index frontend.Variable, k int) []frontend.Variable {
	out := make([]frontend.Variable, 0, k)
	selPart := new(big.Int).Lsh(big.NewInt(sel), 64)
	two32 := new(big.Int).Lsh(big.NewInt(1), 32)
	chunks := (k + bytesPerChunk - 1) / bytesPerChunk
	for j := 0; j < chunks; j++ {
		d := api.Add(selPart, api.Mul(index, two32), j)
		out = append(out, chunkInt8s(api, h(seed, d), min(bytesPerChunk, k-len(out)))...)
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

// circuitSampleBase returns the sample base
// Bs = Chain(TagSample, root, seed, nonceHi, nonceLo, node), where seed is
// the oracle's sample seed (sampleIndices).
func circuitSampleBase(h hasher, root, seed, nonceHi, nonceLo, node frontend.Variable) frontend.Variable {
	return h.chain(bigTag(&tagSample), root, seed, nonceHi, nonceLo, node)
}

// circuitSampleBits returns the low n bits, least significant first, of
// h_s = H(base, s): the bits of sample s's cell index c_s when n is
// log2(M·N). h_s is decomposed in full with the canonical check (the
// decomposition is below r), so the bits are unique and each is
// constrained to 0 or 1.
func circuitSampleBits(api frontend.API, h hasher, base frontend.Variable, s, n int) []frontend.Variable {
	hb := bits.ToBinary(api, h(base, s))
	return hb[:n]
}
