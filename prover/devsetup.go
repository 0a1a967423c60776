package prover

// The deterministic setup below follows gnark's Groth16 BN254 Setup
// (github.com/consensys/gnark backend/groth16/bn254/setup.go, Apache-2.0,
// Copyright Consensys Software Inc.), restricted to circuits without
// commitments, with the toxic waste derived from a public label instead of
// sampled. The resulting keys have gnark's exact layout.

import (
	"crypto/sha256"
	"errors"
	"math/big"
	"math/bits"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"
)

type toxicWaste struct {
	t, alpha, beta, gamma, delta fr.Element
	gammaInv, deltaInv           fr.Element
}

// publicToxicWaste derives the trapdoor from a label: each value is
// SHA-256(name | label | counter) reduced mod r, skipping zero. It is
// public by construction.
func publicToxicWaste(label string) toxicWaste {
	derive := func(name string) fr.Element { return deriveTrapdoor(name, label) }
	tw := toxicWaste{t: derive("tau"), alpha: derive("alpha"), beta: derive("beta"), gamma: derive("gamma"), delta: derive("delta")}
	tw.gammaInv.Inverse(&tw.gamma)
	tw.deltaInv.Inverse(&tw.delta)
	return tw
}

// deriveTrapdoor derives one trapdoor value from a label:
// SHA-256(name | label | counter) reduced mod r, skipping zero.
func deriveTrapdoor(name, label string) fr.Element {
	for ctr := byte(0); ; ctr++ {
		h := sha256.Sum256(append([]byte(name+"|"+label+"|"), ctr))
		var e fr.Element
		e.SetBytes(h[:])
		if !e.IsZero() {
			return e
		}
	}
}

// deterministicSetup builds gnark Groth16 keys for r1cs from the given
// toxic waste.
func deterministicSetup(r1cs *cs.R1CS, tw toxicWaste) (*groth16bn254.ProvingKey, *groth16bn254.VerifyingKey, error) {
	if ci, ok := r1cs.CommitmentInfo.(constraint.Groth16Commitments); ok && len(ci) != 0 {
		return nil, nil, errors.New("prover: deterministic setup does not support Groth16 commitments")
	}
	pk := &groth16bn254.ProvingKey{}
	vk := &groth16bn254.VerifyingKey{}
	nbWires := r1cs.NbInternalVariables + r1cs.GetNbPublicVariables() + r1cs.GetNbSecretVariables()
	nbPublicWires := r1cs.GetNbPublicVariables()
	nbPrivateWires := r1cs.GetNbSecretVariables() + r1cs.NbInternalVariables
	domain := fft.NewDomain(uint64(r1cs.GetNbConstraints()))
	var tn fr.Element
	if tn.Exp(tw.t, new(big.Int).SetUint64(domain.Cardinality)); tn.IsOne() {
		return nil, nil, errors.New("prover: setup trapdoor lies in the FFT domain; choose another label")
	}

	A, B, C := setupABC(r1cs, domain, &tw)

	pkK := make([]fr.Element, nbPrivateWires)
	vkK := make([]fr.Element, nbPublicWires)
	var t0, t1 fr.Element
	for i := range A {
		t1.Mul(&A[i], &tw.beta)
		t0.Mul(&B[i], &tw.alpha)
		t1.Add(&t1, &t0).Add(&t1, &C[i])
		if i < nbPublicWires {
			vkK[i].Mul(&t1, &tw.gammaInv)
		} else {
			pkK[i-nbPublicWires].Mul(&t1, &tw.deltaInv)
		}
	}

	Z := make([]fr.Element, domain.Cardinality)
	one := fr.One()
	var zdt fr.Element
	zdt.Exp(tw.t, new(big.Int).SetUint64(domain.Cardinality)).Sub(&zdt, &one).Mul(&zdt, &tw.deltaInv)
	for i := range Z {
		Z[i] = zdt
		zdt.Mul(&zdt, &tw.t)
	}

	pk.InfinityA = make([]bool, len(A))
	pk.InfinityB = make([]bool, len(B))
	n := 0
	for i, e := range A {
		if e.IsZero() {
			pk.InfinityA[i] = true
			continue
		}
		A[n] = A[i]
		n++
	}
	A = A[:n]
	pk.NbInfinityA = uint64(nbWires - n)
	n = 0
	for i, e := range B {
		if e.IsZero() {
			pk.InfinityB[i] = true
			continue
		}
		B[n] = B[i]
		n++
	}
	B = B[:n]
	pk.NbInfinityB = uint64(nbWires - n)

	_, _, g1, g2 := bn254.Generators()
	g1Scalars := make([]fr.Element, 0, len(A)+len(B)+len(Z)+len(vkK)+len(pkK)+3)
	g1Scalars = append(g1Scalars, tw.alpha, tw.beta, tw.delta)
	g1Scalars = append(g1Scalars, A...)
	g1Scalars = append(g1Scalars, B...)
	g1Scalars = append(g1Scalars, Z...)
	g1Scalars = append(g1Scalars, vkK...)
	g1Scalars = append(g1Scalars, pkK...)
	g1Points := bn254.BatchScalarMultiplicationG1(&g1, g1Scalars)

	pk.G1.Alpha, pk.G1.Beta, pk.G1.Delta = g1Points[0], g1Points[1], g1Points[2]
	off := 3
	pk.G1.A = g1Points[off : off+len(A)]
	off += len(A)
	pk.G1.B = g1Points[off : off+len(B)]
	off += len(B)
	bitReverse(g1Points[off : off+int(domain.Cardinality)])
	pk.G1.Z = g1Points[off : off+int(domain.Cardinality)-1]
	off += int(domain.Cardinality)
	vk.G1.K = g1Points[off : off+nbPublicWires]
	off += nbPublicWires
	pk.G1.K = g1Points[off : off+nbPrivateWires]

	g2Scalars := append(B, tw.beta, tw.delta, tw.gamma)
	g2Points := bn254.BatchScalarMultiplicationG2(&g2, g2Scalars)
	pk.G2.B = g2Points[:len(B)]
	pk.G2.Beta = g2Points[len(B)]
	pk.G2.Delta = g2Points[len(B)+1]
	vk.G2.Delta = g2Points[len(B)+1]
	vk.G2.Gamma = g2Points[len(B)+2]
	vk.G1.Alpha, vk.G2.Beta = pk.G1.Alpha, pk.G2.Beta
	vk.G1.Beta, vk.G1.Delta = pk.G1.Beta, pk.G1.Delta
	vk.PublicAndCommitmentCommitted = [][]int{}
	if err := vk.Precompute(); err != nil {
		return nil, nil, err
	}
	pk.Domain = *domain
	return pk, vk, nil
}

// setupABC evaluates, for every wire, the QAP polynomials A, B, C at the
// trapdoor t (Lagrange basis over the domain).
func setupABC(r1cs *cs.R1CS, domain *fft.Domain, tw *toxicWaste) (A, B, C []fr.Element) {
	nbWires := r1cs.NbInternalVariables + r1cs.GetNbPublicVariables() + r1cs.GetNbSecretVariables()
	A = make([]fr.Element, nbWires)
	B = make([]fr.Element, nbWires)
	C = make([]fr.Element, nbWires)
	one := fr.One()
	var w fr.Element
	w.Set(&domain.Generator)
	wi := fr.One()
	t := make([]fr.Element, r1cs.GetNbConstraints()+1)
	for i := range t {
		t[i].Sub(&tw.t, &wi)
		wi.Mul(&wi, &w)
	}
	tInv := fr.BatchInvert(t)
	var L fr.Element
	L.Exp(tw.t, new(big.Int).SetUint64(domain.Cardinality)).Sub(&L, &one)
	L.Mul(&L, &tInv[0]).Mul(&L, &domain.CardinalityInv)
	accumulate := func(res *fr.Element, t constraint.Term, value *fr.Element) {
		switch cID := t.CoeffID(); cID {
		case constraint.CoeffIdZero:
		case constraint.CoeffIdOne:
			res.Add(res, value)
		case constraint.CoeffIdMinusOne:
			res.Sub(res, value)
		case constraint.CoeffIdTwo:
			var buf fr.Element
			buf.Double(value)
			res.Add(res, &buf)
		default:
			var buf fr.Element
			buf.Mul(&r1cs.Coefficients[cID], value)
			res.Add(res, &buf)
		}
	}
	j := 0
	it := r1cs.GetR1CIterator()
	for c := it.Next(); c != nil; c = it.Next() {
		for _, term := range c.L {
			accumulate(&A[term.WireID()], term, &L)
		}
		for _, term := range c.R {
			accumulate(&B[term.WireID()], term, &L)
		}
		for _, term := range c.O {
			accumulate(&C[term.WireID()], term, &L)
		}
		L.Mul(&L, &w).Mul(&L, &t[j]).Mul(&L, &tInv[j+1])
		j++
	}
	return A, B, C
}

func bitReverse[T any](a []T) {
	n := uint64(len(a))
	nn := uint64(64 - bits.TrailingZeros64(n))
	for i := uint64(0); i < n; i++ {
		irev := bits.Reverse64(i) >> nn
		if irev > i {
			a[i], a[irev] = a[irev], a[i]
		}
	}
}
