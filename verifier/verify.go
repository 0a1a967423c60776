package verifier

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
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
// exponentiation, work split across GOMAXPROCS goroutines), with
// coefficients ρ = ρ₁ + λ·ρ₂ built from two 64-bit values from crypto/rand
// (2¹²⁸ possible coefficients; see endo.go). If that fails it computes each proof's
// Miller loop once and bisects: every half is re-checked with the same
// coefficients (one final exponentiation per half), so the proofs that fail
// on their own are found and the others still pass.
//
// bad lists, in increasing order, the indexes of proofs that do not verify
// (including nil proofs and inputs that name another profile); err is
// non-nil only when the batch cannot be checked at all (shape mismatch, key
// error, or a failing random source).
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
	switch {
	case len(idx) == 0:
	case len(idx) == 1:
		if Verify(vk, proofs[idx[0]], pubs[idx[0]]) != nil {
			bad = append(bad, idx[0])
		}
	default:
		b, err := vk.batch(proofs, pubs, idx)
		if err != nil {
			return nil, err
		}
		bad = append(bad, b...)
	}
	slices.Sort(bad)
	return bad, nil
}

// batchState holds one batch's coefficients and scaled points.
type batchState struct {
	vk   *VerifyingKey
	pubs []PublicInputs
	idx  []int            // proof indexes in the caller's slices
	r    []fr.Element     // ρᵢ
	as   []bn254.G1Affine // ρᵢ·Aᵢ
	bs   []bn254.G2Affine // Bᵢ
	cs   []bn254.G1Affine // Cᵢ
	ml   []bn254.GT       // per-proof Miller loops, computed on failure
}

func (vk *VerifyingKey) batch(proofs []*Proof, pubs []PublicInputs, idx []int) ([]int, error) {
	n := len(idx)
	st := &batchState{vk: vk, pubs: pubs, idx: idx,
		r:  make([]fr.Element, n),
		bs: make([]bn254.G2Affine, n), cs: make([]bn254.G1Affine, n)}
	halves := make([][2]uint64, n)
	var buf [16]byte
	e := endo()
	for k := range st.r {
		for st.r[k].IsZero() {
			if _, err := rand.Read(buf[:]); err != nil {
				return nil, fmt.Errorf("verifier: random coefficients: %w", err)
			}
			halves[k] = [2]uint64{binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])}
			var r1 fr.Element
			r1.SetUint64(halves[k][0])
			st.r[k].SetUint64(halves[k][1])
			st.r[k].Mul(&st.r[k], &e.lambda).Add(&st.r[k], &r1)
		}
		st.bs[k], st.cs[k] = proofs[idx[k]].B, proofs[idx[k]].C
	}
	jac := make([]bn254.G1Jac, n)
	parallel(n, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			jac[k] = scaleByCoefficient(&proofs[idx[k]].A, halves[k][0], halves[k][1])
		}
	})
	st.as = bn254.BatchJacobianToAffineG1(jac)
	ok, err := st.check(0, n)
	if err != nil || ok {
		return nil, err
	}
	// Some proof is bad: compute every Miller loop once, then bisect.
	st.ml = make([]bn254.GT, n)
	errs := make([]error, n)
	parallel(n, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			st.ml[k], errs[k] = bn254.MillerLoop(st.as[k:k+1], st.bs[k:k+1])
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var bad []int
	if err := st.bisect(0, n, true, &bad); err != nil {
		return nil, err
	}
	return bad, nil
}

// bisect appends to bad the proofs of [lo, hi) that fail. known says the
// range is already known to contain a failing proof.
func (st *batchState) bisect(lo, hi int, known bool, bad *[]int) error {
	if !known {
		ok, err := st.check(lo, hi)
		if err != nil || ok {
			return err
		}
	}
	if hi-lo == 1 {
		*bad = append(*bad, st.idx[lo])
		return nil
	}
	mid := (lo + hi) / 2
	ok, err := st.check(lo, mid)
	if err != nil {
		return err
	}
	if !ok {
		if err := st.bisect(lo, mid, true, bad); err != nil {
			return err
		}
		// The right half is unknown.
		return st.bisect(mid, hi, false, bad)
	}
	// The left half passes, so the failure is in the right half.
	return st.bisect(mid, hi, true, bad)
}

// check tests the random linear combination over proofs [lo, hi):
//
//	Π e(ρᵢ·Aᵢ, Bᵢ) · e(−Σ ρᵢ·Lᵢ, γ) · e(−Σ ρᵢ·Cᵢ, δ) = e(α, β)^(Σ ρᵢ)
//
// where Σ ρᵢ·Lᵢ is folded into one 7-point multi-exponentiation.
func (st *batchState) check(lo, hi int) (bool, error) {
	vk, pre := st.vk, st.vk.pre
	r := st.r[lo:hi]
	icScalars := make([]fr.Element, NbPublicInputs+1)
	var t fr.Element
	for k := lo; k < hi; k++ {
		icScalars[0].Add(&icScalars[0], &st.r[k])
		pub := &st.pubs[st.idx[k]]
		for j := 0; j < NbPublicInputs; j++ {
			t.Mul(&st.r[k], &pub[j])
			icScalars[j+1].Add(&icScalars[j+1], &t)
		}
	}
	sumL, err := vk.combineIC(icScalars)
	if err != nil {
		return false, err
	}
	var sumC bn254.G1Affine
	tasks := max(1, min(runtime.GOMAXPROCS(0), hi-lo))
	if _, err := sumC.MultiExp(st.cs[lo:hi], r, ecc.MultiExpConfig{NbTasks: tasks}); err != nil {
		return false, err
	}
	var neg [2]bn254.G1Affine
	neg[0].Neg(&sumL)
	neg[1].Neg(&sumC)
	acc, err := bn254.MillerLoopFixedQ(neg[:],
		[][2][len(bn254.LoopCounter)]bn254.LineEvaluationAff{pre.gammaLines, pre.deltaLines})
	if err != nil {
		return false, err
	}
	if st.ml != nil {
		for k := lo; k < hi; k++ {
			acc.Mul(&acc, &st.ml[k])
		}
	} else {
		parts := make([]bn254.GT, tasks)
		errs := make([]error, tasks)
		per := (hi - lo + tasks - 1) / tasks
		var wg sync.WaitGroup
		for w := 0; w < tasks; w++ {
			a, b := lo+w*per, min(lo+(w+1)*per, hi)
			if a >= b {
				parts[w].SetOne()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				parts[w], errs[w] = bn254.MillerLoop(st.as[a:b], st.bs[a:b])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return false, err
		}
		for w := range parts {
			acc.Mul(&acc, &parts[w])
		}
	}
	got := bn254.FinalExponentiation(&acc)
	var sumR big.Int
	icScalars[0].BigInt(&sumR)
	var want bn254.GT
	want.CyclotomicExp(pre.alphaBeta, &sumR)
	return got.Equal(&want), nil
}

// parallel runs f over [0, n) split into GOMAXPROCS contiguous ranges.
func parallel(n int, f func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	per := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, n)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
