package truegpuv1

import (
	"errors"
	"testing"
)

func TestSigningDigestIgnoresSignatureAndSeparatesTypes(t *testing.T) {
	a := &SubmitCommitmentRequest{ChallengeId: "0x01", Address: "0xabc", Root: make([]byte, 32)}
	d1, err := SigningDigest(a)
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = []byte{1, 2, 3}
	d2, err := SigningDigest(a)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("digest depends on the signature field: %x vs %x", d1, d2)
	}
	if len(a.Signature) != 3 {
		t.Fatalf("SigningDigest modified its argument")
	}
	a.Root[0] = 1
	d3, _ := SigningDigest(a)
	if d3 == d1 {
		t.Fatalf("digest does not bind the root")
	}
	// Same field values under another request type must hash differently.
	p := &SubmitProofRequest{ChallengeId: "0x01", Address: "0xabc"}
	c := &SubmitCommitmentRequest{ChallengeId: "0x01", Address: "0xabc"}
	dp, _ := SigningDigest(p)
	dc, _ := SigningDigest(c)
	if dp == dc {
		t.Fatalf("digests of different request types collide")
	}
}

func TestSigningDigestRejectsUnsignable(t *testing.T) {
	_, err := SigningDigest(&Challenge{})
	if !errors.Is(err, ErrNotSignable) {
		t.Fatalf("got %v, want ErrNotSignable", err)
	}
}

func TestChallengeIDBindsInputs(t *testing.T) {
	n := make([]byte, 32)
	a := make([]byte, 20)
	base := ChallengeID(n, a, 0)
	if ChallengeID(n, a, 1) == base {
		t.Fatal("device index not bound")
	}
	a[0] = 1
	if ChallengeID(n, a, 0) == base {
		t.Fatal("address not bound")
	}
}
