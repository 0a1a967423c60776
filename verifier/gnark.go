package verifier

import (
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
)

// FromGnark converts a gnark Groth16 BN254 verifying key of a work-proof
// circuit to a VerifyingKey for the given profile digest. Keys with
// commitments or another number of public inputs are refused.
func FromGnark(gvk groth16.VerifyingKey, digest [32]byte) (*VerifyingKey, error) {
	v, ok := gvk.(*groth16bn254.VerifyingKey)
	if !ok {
		return nil, fmt.Errorf("%w: need a BN254 key, got %T", ErrMalformedKey, gvk)
	}
	if len(v.CommitmentKeys) != 0 {
		return nil, fmt.Errorf("%w: key has %d commitments; work proofs use none", ErrMalformedKey, len(v.CommitmentKeys))
	}
	if len(v.G1.K) != NbPublicInputs+1 {
		return nil, fmt.Errorf("%w: key has %d public inputs, want %d", ErrMalformedKey, len(v.G1.K)-1, NbPublicInputs)
	}
	vk := &VerifyingKey{Digest: digest, Alpha: v.G1.Alpha, Beta: v.G2.Beta, Gamma: v.G2.Gamma, Delta: v.G2.Delta}
	copy(vk.IC[:], v.G1.K)
	// Round-trip through the strict decoder: rejects identity points and
	// non-canonical digests exactly as for keys read from the wire.
	return DecodeVerifyingKey(vk.Encode())
}

// Gnark returns the key as a gnark Groth16 BN254 verifying key.
func (vk *VerifyingKey) Gnark() (*groth16bn254.VerifyingKey, error) {
	g := &groth16bn254.VerifyingKey{}
	g.G1.Alpha = vk.Alpha
	g.G1.K = append(g.G1.K, vk.IC[:]...)
	g.G2.Beta, g.G2.Gamma, g.G2.Delta = vk.Beta, vk.Gamma, vk.Delta
	g.PublicAndCommitmentCommitted = [][]int{}
	if err := g.Precompute(); err != nil {
		return nil, err
	}
	return g, nil
}

// ProofFromGnark converts a gnark Groth16 BN254 proof; proofs carrying
// commitments are refused.
func ProofFromGnark(gp groth16.Proof) (*Proof, error) {
	p, ok := gp.(*groth16bn254.Proof)
	if !ok {
		return nil, fmt.Errorf("%w: need a BN254 proof, got %T", ErrMalformedProof, gp)
	}
	if len(p.Commitments) != 0 {
		return nil, fmt.Errorf("%w: proof has %d commitments; work proofs use none", ErrMalformedProof, len(p.Commitments))
	}
	return DecodeProof((&Proof{A: p.Ar, B: p.Bs, C: p.Krs}).Encode())
}

// Gnark returns the proof as a gnark Groth16 BN254 proof.
func (p *Proof) Gnark() *groth16bn254.Proof {
	return &groth16bn254.Proof{Ar: p.A, Bs: p.B, Krs: p.C}
}

// SolidityProof returns the proof as the uint256[8] argument of the
// exported verifier's verifyProof: A.x, A.y, B.x.a1, B.x.a0, B.y.a1,
// B.y.a0, C.x, C.y.
func (p *Proof) SolidityProof() [8]*big.Int {
	raw := p.Gnark().MarshalSolidity()
	var out [8]*big.Int
	for i := range out {
		out[i] = new(big.Int).SetBytes(raw[32*i : 32*(i+1)])
	}
	return out
}

// SolidityInputs returns the public inputs as the uint256[6] argument of
// the exported verifier's verifyProof.
func (p *PublicInputs) SolidityInputs() [NbPublicInputs]*big.Int {
	var out [NbPublicInputs]*big.Int
	for i := range p {
		out[i] = p[i].BigInt(new(big.Int))
	}
	return out
}

// ExportSolidity writes a Solidity contract that verifies work proofs under
// vk (gnark's Groth16 BN254 template; keccak256 is irrelevant as the key has
// no commitments).
func ExportSolidity(vk *VerifyingKey, w io.Writer) error {
	if vk == nil {
		return errors.New("verifier: ExportSolidity needs a verifying key")
	}
	g, err := vk.Gnark()
	if err != nil {
		return err
	}
	if err := g.ExportSolidity(w); err != nil {
		return fmt.Errorf("verifier: export Solidity: %w", err)
	}
	return nil
}
