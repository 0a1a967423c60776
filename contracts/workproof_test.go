package contracts

import (
	"math/big"
	"sync"
	"testing"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// workProof is a real work proof for the "test" profile and its inputs.
type workProof struct {
	proof  []byte // 256-byte EIP-197 encoding (A, B, C)
	inputs [verifier.NbPublicInputs]*big.Int
}

var (
	workProofOnce sync.Once
	workProofVal  *workProof
	workProofErr  error
)

// testWorkProof runs the seeded workload of the "test" profile on the CPU
// reference, commits to it and proves it with the deterministic dev keys,
// the same keys WorkVerifierTest.sol was generated from.
func testWorkProof(t testing.TB) *workProof {
	t.Helper()
	workProofOnce.Do(func() {
		p, err := prover.ProfileByName("test")
		if err != nil {
			workProofErr = err
			return
		}
		pk, _, err := prover.UnsafeDevKeys(p, "")
		if err != nil {
			workProofErr = err
			return
		}
		var nonce prover.Nonce
		copy(nonce[:], "evm work-proof test nonce")
		node := prover.Address{0xaa, 0xbb, 0xcc}
		seed := prover.SampleSeed{0x5e, 0xed}
		raw, root, err := prover.Prove(pk, p, nonce, node, seed, prover.Compute(p, nonce))
		if err != nil {
			workProofErr = err
			return
		}
		proof, err := verifier.DecodeProof(raw)
		if err != nil {
			workProofErr = err
			return
		}
		pub, err := p.PublicInputs(nonce, node, root, seed)
		if err != nil {
			workProofErr = err
			return
		}
		wp := &workProof{inputs: pub.SolidityInputs()}
		for _, w := range proof.SolidityProof() {
			var word [32]byte
			w.FillBytes(word[:])
			wp.proof = append(wp.proof, word[:]...)
		}
		workProofVal = wp
	})
	if workProofErr != nil {
		t.Fatalf("work proof: %v", workProofErr)
	}
	return workProofVal
}

func TestWorkVerifierOnChain(t *testing.T) {
	wp := testWorkProof(t)
	c := newChain(t)
	v, _ := c.deploy("WorkVerifierTest")

	if _, _, err := v.call(nil, "verifyProof", wp.proof, wp.inputs); err != nil {
		t.Fatalf("a real work proof is refused on-chain: %v", err)
	}

	tamperedProof := append([]byte{}, wp.proof...)
	tamperedProof[31] ^= 1 // A.x: no longer the proof (likely not on the curve)
	swapped := append([]byte{}, wp.proof...)
	copy(swapped[0:64], wp.proof[192:256]) // A := C: on the curve, wrong pairing
	wrongRoot := wp.inputs
	wrongRoot[verifier.InputRoot] = new(big.Int).Add(wp.inputs[verifier.InputRoot], big.NewInt(1))
	wrongSeed := wp.inputs
	wrongSeed[verifier.InputSeed] = new(big.Int).Xor(wp.inputs[verifier.InputSeed], big.NewInt(1))
	wrongDigest := wp.inputs
	wrongDigest[verifier.InputDigest] = new(big.Int).Add(wp.inputs[verifier.InputDigest], big.NewInt(1))
	var unreduced [verifier.NbPublicInputs]*big.Int
	copy(unreduced[:], wp.inputs[:])
	unreduced[0] = new(big.Int).Add(wp.inputs[0], frModulus)

	tests := []struct {
		name   string
		proof  []byte
		inputs [verifier.NbPublicInputs]*big.Int
		revert string
	}{
		{"tampered proof point", tamperedProof, wp.inputs, "ProofInvalid"},
		{"swapped proof points", swapped, wp.inputs, "ProofInvalid"},
		{"other root", wp.proof, wrongRoot, "ProofInvalid"},
		{"other sample seed", wp.proof, wrongSeed, "ProofInvalid"},
		{"other profile digest", wp.proof, wrongDigest, "ProofInvalid"},
		{"unreduced public input", wp.proof, unreduced, "PublicInputNotInField"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.call(nil, "verifyProof", tc.proof, tc.inputs)
			wantRevert(t, err, tc.revert)
		})
	}
}

// frModulus is the BN254 scalar field order r.
var frModulus, _ = new(big.Int).SetString("21888242871839275222246405745257275088548364400416034343698204186575808495617", 10)

// TestWorkVerifierStandardDeployed checks the committed verifier of the
// standard profile deploys and refuses a proof made under other keys. A
// real standard-profile proof needs a dev setup of about 340k constraints
// (minutes on 2 cores), so it runs in BenchmarkStandardWorkProofOnChain
// instead of here.
func TestWorkVerifierStandardDeployed(t *testing.T) {
	wp := testWorkProof(t)
	c := newChain(t)
	v, _ := c.deploy("WorkVerifierStandard")
	_, _, err := v.call(nil, "verifyProof", wp.proof, wp.inputs)
	wantRevert(t, err, "ProofInvalid")
}

// BenchmarkStandardWorkProofOnChain proves the standard profile's workload
// with its dev keys and verifies the proof with WorkVerifierStandard; gas/op
// is the EVM execution gas of verifyProof.
func BenchmarkStandardWorkProofOnChain(b *testing.B) {
	p, err := prover.ProfileByName("standard")
	if err != nil {
		b.Fatal(err)
	}
	pk, _, err := prover.UnsafeDevKeys(p, "")
	if err != nil {
		b.Fatal(err)
	}
	var nonce prover.Nonce
	copy(nonce[:], "evm standard work-proof nonce")
	node := prover.Address{0x51}
	seed := prover.SampleSeed{0x51, 0xed}
	raw, root, err := prover.Prove(pk, p, nonce, node, seed, prover.Compute(p, nonce))
	if err != nil {
		b.Fatal(err)
	}
	proof, err := verifier.DecodeProof(raw)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := p.PublicInputs(nonce, node, root, seed)
	if err != nil {
		b.Fatal(err)
	}
	var enc []byte
	for _, w := range proof.SolidityProof() {
		var word [32]byte
		w.FillBytes(word[:])
		enc = append(enc, word[:]...)
	}
	c := newChain(b)
	v, _ := c.deploy("WorkVerifierStandard")
	bad := append([]byte{}, enc...)
	copy(bad[0:64], enc[192:256])
	if _, _, err := v.call(nil, "verifyProof", bad, pub.SolidityInputs()); err == nil {
		b.Fatal("tampered standard proof accepted")
	}
	var gas uint64
	for b.Loop() {
		_, g, err := v.call(nil, "verifyProof", enc, pub.SolidityInputs())
		if err != nil {
			b.Fatal(err)
		}
		gas = g
	}
	b.ReportMetric(float64(gas), "gas/op")
}
