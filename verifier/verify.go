package verifier

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"runtime"
	"slices"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

func (vk *VerifyingKey) ready() (*precomputed, error) {
	if vk.pre == nil {
		if err := vk.Precompute(); err != nil {
			return nil, err
		}
	}
	return vk.pre, nil
}

// publicCombination returns IC[0] + Σ x_i·IC[i+1] scaled: Σ_j s_j·IC[j]
// for the given scalars (s_0 multiplies IC[0]).
func (vk *VerifyingKey) combineIC(scalars []fr.Element) (bn254.G1Affine, error) {
	var out bn254.G1Affine
	if _, err := out.MultiExp(vk.IC[:], scalars, ecc.MultiExpConfig{NbTasks: 1}); err != nil {
		return out, err
	}
	return out, nil
}

// Verify checks one proof against its public inputs:
//
//	e(A, B) = e(α, β) · e(IC[0] + Σ xᵢ·IC[i+1], γ) · e(C, δ)
//
// It fails with ErrDigestMismatch when the inputs name another profile
// and with ErrInvalidProof when the pairing check fails.
func Verify(vk *VerifyingKey, proof *Proof, pub PublicInputs) error {
	pre, err := vk.ready()
	if err != nil {
		return err
	}
	if pub.Digest() != vk.Digest {
		return fmt.Errorf("%w: inputs carry %x, key is for %x", ErrDigestMismatch, pub.Digest(), vk.Digest)
	}
	scalars := make([]fr.Element, NbPublicInputs+1)
	scalars[0].SetOne()
	copy(scalars[1:], pub[:])
	l, err := vk.combineIC(scalars)
	if err != nil {
		return err
	}
	var negL, negC bn254.G1Affine
	negL.Neg(&l)
	negC.Neg(&proof.C)
	ml1, err := bn254.MillerLoop([]bn254.G1Affine{proof.A}, []bn254.G2Affine{proof.B})
	if err != nil {
		return err
	}
	ml2, err := bn254.MillerLoopFixedQ([]bn254.G1Affine{negL, negC},
		[][2][len(bn254.LoopCounter)]bn254.LineEvaluationAff{pre.gammaLines, pre.deltaLines})
	if err != nil {
		return err
	}
	ml1.Mul(&ml1, &ml2)
	got := bn254.FinalExponentiation(&ml1)
	if !got.Equal(&pre.alphaBeta) {
		return ErrInvalidProof
	}
	return nil
}

// VerifyBatch checks many proofs under one key. It first runs one random
// linear combination of all pairing equations (N+2 Miller loops, one final
// exponentiation, work split across GOMAXPROCS goroutines), with 128-bit
// coefficients from crypto/rand. If that fails it bisects, re-checking
// each half with fresh coefficients, so the proofs that fail on their own
// are found and the others still pass.
//
// bad lists, in increasing order, the indexes of proofs that do not verify
// (including those whose inputs name another profile); err is non-nil only
// when the batch cannot be checked at all (shape mismatch, key error, or a
// failing random source). A nil proof is reported as bad.
func VerifyBatch(vk *VerifyingKey, proofs []*Proof, pubs []PublicInputs) (bad []int, err error) {
	if len(proofs) != len(pubs) {
		return nil, fmt.Errorf("%w: %d proofs, %d public inputs", ErrBatchShape, len(proofs), len(pubs))
	}
	if _, err := vk.ready(); err != nil {
		return nil, err
	}
	idx := make([]int, 0, len(proofs))
	for i := range proofs {
		if proofs[i] == nil || pubs[i].Digest() != vk.Digest {
			bad = append(bad, i)
			continue
		}
		idx = append(idx, i)
	}
	more, err := vk.bisect(proofs, pubs, idx)
	if err != nil {
		return nil, err
	}
	bad = append(bad, more...)
	slices.Sort(bad)
	return bad, nil
}

// bisectSingleBelow is the subset size at which bisection checks proofs
// one by one instead of halving again.
const bisectSingleBelow = 3

func (vk *VerifyingKey) bisect(proofs []*Proof, pubs []PublicInputs, idx []int) ([]int, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	if len(idx) < bisectSingleBelow {
		var bad []int
		for _, i := range idx {
			if err := Verify(vk, proofs[i], pubs[i]); err != nil {
				bad = append(bad, i)
			}
		}
		return bad, nil
	}
	ok, err := vk.batchCheck(proofs, pubs, idx)
	if err != nil || ok {
		return nil, err
	}
	h := len(idx) / 2
	left, err := vk.bisect(proofs, pubs, idx[:h])
	if err != nil {
		return nil, err
	}
	right, err := vk.bisect(proofs, pubs, idx[h:])
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// batchCheck runs the random linear combination over proofs idx:
//
//	Π e(rᵢ·Aᵢ, Bᵢ) · e(−Σ rᵢ·Lᵢ, γ) · e(−Σ rᵢ·Cᵢ, δ) = e(α, β)^(Σ rᵢ)
//
// where Σ rᵢ·Lᵢ is folded into one 6-point multi-exponentiation.
func (vk *VerifyingKey) batchCheck(proofs []*Proof, pubs []PublicInputs, idx []int) (bool, error) {
	pre := vk.pre
	n := len(idx)
	r := make([]fr.Element, n)
	var buf [16]byte
	for i := range r {
		for {
			if _, err := rand.Read(buf[:]); err != nil {
				return false, fmt.Errorf("verifier: random coefficients: %w", err)
			}
			hi, lo := binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])
			if hi|lo != 0 {
				r[i].SetBigInt(new(big.Int).SetBytes(buf[:]))
				break
			}
		}
	}

	// Σ rᵢ and Σ rᵢ·xᵢⱼ in the scalar field.
	icScalars := make([]fr.Element, NbPublicInputs+1)
	var t fr.Element
	for k, i := range idx {
		icScalars[0].Add(&icScalars[0], &r[k])
		for j := 0; j < NbPublicInputs; j++ {
			t.Mul(&r[k], &pubs[i][j])
			icScalars[j+1].Add(&icScalars[j+1], &t)
		}
	}
	sumL, err := vk.combineIC(icScalars)
	if err != nil {
		return false, err
	}
	cs := make([]bn254.G1Affine, n)
	bs := make([]bn254.G2Affine, n)
	for k, i := range idx {
		cs[k] = proofs[i].C
		bs[k] = proofs[i].B
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	var sumC bn254.G1Affine
	if _, err := sumC.MultiExp(cs, r, ecc.MultiExpConfig{NbTasks: workers}); err != nil {
		return false, err
	}
	var negL, negC bn254.G1Affine
	negL.Neg(&sumL)
	negC.Neg(&sumC)

	// Miller loops over rᵢ·Aᵢ and Bᵢ, split across workers.
	as := make([]bn254.G1Affine, n)
	partial := make([]bn254.GT, workers)
	errs := make([]error, workers)
	per := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, n)
		if lo >= hi {
			partial[w].SetOne()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s big.Int
			for k := lo; k < hi; k++ {
				r[k].BigInt(&s)
				as[k].ScalarMultiplication(&proofs[idx[k]].A, &s)
			}
			partial[w], errs[w] = bn254.MillerLoop(as[lo:hi], bs[lo:hi])
		}()
	}
	fixed, err := bn254.MillerLoopFixedQ([]bn254.G1Affine{negL, negC},
		[][2][len(bn254.LoopCounter)]bn254.LineEvaluationAff{pre.gammaLines, pre.deltaLines})
	wg.Wait()
	if err != nil {
		return false, err
	}
	for w := range partial {
		if errs[w] != nil {
			return false, errs[w]
		}
		fixed.Mul(&fixed, &partial[w])
	}
	got := bn254.FinalExponentiation(&fixed)

	var sumR big.Int
	icScalars[0].BigInt(&sumR)
	var want bn254.GT
	want.CyclotomicExp(pre.alphaBeta, &sumR)
	return got.Equal(&want), nil
}
