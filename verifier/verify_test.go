package verifier_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/truegpu/truegpu/verifier"
)

func TestVerify(t *testing.T) {
	f := testFixture(t)
	otherDigest := f.pubs[0]
	otherDigest[verifier.InputDigest].SetUint64(7)
	tests := []struct {
		name  string
		proof *verifier.Proof
		pub   verifier.PublicInputs
		want  error
	}{
		{"valid", f.proofs[0], f.pubs[0], nil},
		{"valid, another proof", f.proofs[3], f.pubs[3], nil},
		{"inputs of another challenge", f.proofs[0], f.pubs[1], verifier.ErrInvalidProof},
		{"proof swapped A and C", &verifier.Proof{A: f.proofs[0].C, B: f.proofs[0].B, C: f.proofs[0].A}, f.pubs[0], verifier.ErrInvalidProof},
		{"another profile digest", f.proofs[0], otherDigest, verifier.ErrDigestMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifier.Verify(f.vk, tc.proof, tc.pub)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// tampered returns a proof that decodes but fails: C replaced by A+C.
func tampered(p *verifier.Proof) *verifier.Proof {
	q := *p
	q.C.Add(&q.C, &q.A)
	return &q
}

func TestVerifyBatch(t *testing.T) {
	f := testFixture(t)
	// A batch of 2·fixtureProofs (each proof twice) exercises the RLC
	// path rather than the one-by-one fallback of tiny batches.
	var proofs []*verifier.Proof
	var pubs []verifier.PublicInputs
	for r := 0; r < 2; r++ {
		proofs = append(proofs, f.proofs...)
		pubs = append(pubs, f.pubs...)
	}
	withBad := func(bad ...int) ([]*verifier.Proof, []verifier.PublicInputs) {
		ps := slices.Clone(proofs)
		for _, i := range bad {
			ps[i] = tampered(ps[i])
		}
		return ps, pubs
	}
	tests := []struct {
		name string
		bad  []int
	}{
		{"all valid", nil},
		{"first tampered", []int{0}},
		{"one in the middle tampered", []int{7}},
		{"last tampered", []int{len(proofs) - 1}},
		{"two tampered", []int{2, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, pu := withBad(tc.bad...)
			bad, err := verifier.VerifyBatch(f.vk, ps, pu)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(bad, tc.bad) {
				t.Fatalf("bad = %v, want %v", bad, tc.bad)
			}
		})
	}
	t.Run("wrong inputs and nil proof", func(t *testing.T) {
		ps := slices.Clone(proofs)
		pu := slices.Clone(pubs)
		pu[4] = pubs[5] // valid proof, inputs of another challenge
		ps[8] = nil
		pu[10][verifier.InputDigest].SetUint64(1) // another profile
		bad, err := verifier.VerifyBatch(f.vk, ps, pu)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{4, 8, 10}; !slices.Equal(bad, want) {
			t.Fatalf("bad = %v, want %v", bad, want)
		}
	})
	t.Run("shape mismatch", func(t *testing.T) {
		if _, err := verifier.VerifyBatch(f.vk, proofs, pubs[:3]); !errors.Is(err, verifier.ErrBatchShape) {
			t.Fatalf("err = %v, want ErrBatchShape", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		bad, err := verifier.VerifyBatch(f.vk, nil, nil)
		if err != nil || len(bad) != 0 {
			t.Fatalf("VerifyBatch(empty) = %v, %v", bad, err)
		}
	})
}

func TestNewPublicInputs(t *testing.T) {
	var digest, root [32]byte
	var nonce [32]byte
	var node [20]byte
	for i := range nonce {
		nonce[i] = byte(i + 1)
	}
	node[0] = 0xff
	seed := [verifier.SampleSeedSize]byte{0xff, 2, 3}
	pub, err := verifier.NewPublicInputs(digest, nonce, node, root, seed)
	if err != nil {
		t.Fatal(err)
	}
	hi := pub[verifier.InputNonceHi].Bytes()
	lo := pub[verifier.InputNonceLo].Bytes()
	nd := pub[verifier.InputNode].Bytes()
	sd := pub[verifier.InputSeed].Bytes()
	if !slices.Equal(hi[16:], nonce[:16]) || !slices.Equal(lo[16:], nonce[16:]) || !slices.Equal(nd[12:], node[:]) || !slices.Equal(sd[16:], seed[:]) {
		t.Fatalf("encoding: hi %x lo %x node %x seed %x", hi, lo, nd, sd)
	}
	for _, e := range []int{verifier.InputNonceHi, verifier.InputNonceLo, verifier.InputNode, verifier.InputSeed} {
		b := pub[e].Bytes()
		if b[0] != 0 {
			t.Fatalf("input %d is wider than its range: %x", e, b)
		}
	}
	var big [32]byte
	for i := range big {
		big[i] = 0xff
	}
	if _, err := verifier.NewPublicInputs(digest, nonce, node, big, seed); !errors.Is(err, verifier.ErrNonCanonical) {
		t.Fatalf("root ≥ r: err = %v, want ErrNonCanonical", err)
	}
	if _, err := verifier.NewPublicInputs(big, nonce, node, root, seed); !errors.Is(err, verifier.ErrNonCanonical) {
		t.Fatalf("digest ≥ r: err = %v, want ErrNonCanonical", err)
	}
}
