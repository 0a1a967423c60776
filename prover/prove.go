package prover

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"

	"github.com/truegpu/truegpu/verifier"
)

// ErrWrongResult reports committed results that differ from the reference
// computation at a sampled cell: the proof cannot exist.
var ErrWrongResult = errors.New("prover: committed result differs from the reference workload")

// PublicInputs returns the public inputs of a proof for this profile. The
// oracle builds them from its own record of the challenge: the nonce it
// issued, the node it issued it to, the root it recorded and the sample
// seed it drew when recording that root.
func (p *Profile) PublicInputs(nonce Nonce, node Address, root [32]byte, seed SampleSeed) (verifier.PublicInputs, error) {
	return verifier.NewPublicInputs(p.Digest(), nonce, node, root, seed)
}

// Assignment returns the full circuit assignment (public and private) that
// proves tree's sampled cells for (nonce, node) under the oracle's sample
// seed. It fails with ErrWrongResult when a sampled cell is not the
// reference value.
func Assignment(tree *Tree, nonce Nonce, node Address, seed SampleSeed) (*Circuit, error) {
	return assignment(tree, nonce, node, seed, true)
}

func assignment(tree *Tree, nonce Nonce, node Address, sseed SampleSeed, checkResults bool) (*Circuit, error) {
	p := tree.profile
	root := tree.rootElement()
	idx := sampleIndices(p, &root, sseed, nonce, node)
	seed := seedElement(p, nonce)
	hi, lo := nonceElements(nonce)
	digest := p.digestElement()
	nodeE := addressElement(node)
	sseedE := seedInput(sseed)
	c := NewCircuit(p)
	c.NonceHi, c.NonceLo, c.Node = bigOf(&hi), bigOf(&lo), bigOf(&nodeE)
	c.Root, c.Seed, c.Digest = bigOf(&root), bigOf(&sseedE), bigOf(&digest)
	row := make([]int8, p.K)
	col := make([]int8, p.K)
	for s, cell := range idx {
		i, j := cell/p.N, cell%p.N
		prgVector(&seed, domainA, i, row)
		prgVector(&seed, domainB, j, col)
		var want int32
		for k := range row {
			want += int32(row[k]) * int32(col[k])
		}
		if got := tree.cells[cell]; checkResults && got != want {
			return nil, fmt.Errorf("%w: sample %d is cell %d (row %d, column %d): committed %d, reference %d",
				ErrWrongResult, s, cell, i, j, got, want)
		}
		o, err := tree.Open(cell)
		if err != nil {
			return nil, err
		}
		for t := range o.Word {
			c.Samples[s].Word[t] = uint32(o.Word[t])
		}
		for d := range o.Siblings {
			c.Samples[s].Siblings[d] = new(big.Int).SetBytes(o.Siblings[d][:])
		}
	}
	return c, nil
}

func bigOf(e interface{ BigInt(*big.Int) *big.Int }) *big.Int { return e.BigInt(new(big.Int)) }

// Prove commits to cells (the full result vector C of the challenge) and
// proves the cells sampled under the oracle's sample seed for (nonce,
// node). It returns the wire proof and the commitment root. In the
// protocol the root is sent first and the seed arrives with the
// commitment's answer; Prove is for callers that already hold both.
func Prove(pk *ProvingKey, p *Profile, nonce Nonce, node Address, seed SampleSeed, cells []int32) ([]byte, [32]byte, error) {
	if pk == nil || pk.profile.Digest() != p.Digest() {
		return nil, [32]byte{}, fmt.Errorf("%w: proving key is not for %s", ErrKeyMismatch, p.ID())
	}
	tree, err := NewTree(p, cells)
	if err != nil {
		return nil, [32]byte{}, err
	}
	proof, err := ProveTree(pk, tree, nonce, node, seed)
	return proof, tree.Root(), err
}

// ProveTree proves the sampled cells of an existing commitment (the tree
// whose root was sent before the deadline) under the sample seed the
// oracle returned for it. The proof is checked against the key's
// verifying key before it is returned.
func ProveTree(pk *ProvingKey, tree *Tree, nonce Nonce, node Address, seed SampleSeed) ([]byte, error) {
	p := tree.profile
	if pk == nil || pk.profile.Digest() != p.Digest() {
		return nil, fmt.Errorf("%w: proving key is not for %s", ErrKeyMismatch, p.ID())
	}
	assignment, err := Assignment(tree, nonce, node, seed)
	if err != nil {
		return nil, err
	}
	w, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("prover: witness for %s: %w", p.ID(), err)
	}
	gp, err := groth16.Prove(pk.ccs, pk.pk, w)
	if err != nil {
		return nil, fmt.Errorf("prover: prove %s: %w", p.ID(), err)
	}
	proof, err := verifier.ProofFromGnark(gp)
	if err != nil {
		return nil, fmt.Errorf("prover: %w", err)
	}
	pub, err := p.PublicInputs(nonce, node, tree.Root(), seed)
	if err != nil {
		return nil, err
	}
	if err := verifier.Verify(pk.vk, proof, pub); err != nil {
		return nil, fmt.Errorf("prover: fresh proof for %s does not verify under the key's own verifying key (corrupt key?): %w", p.ID(), err)
	}
	return proof.Encode(), nil
}
