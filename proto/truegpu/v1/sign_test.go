package truegpuv1

import (
	"bytes"
	"encoding/binary"
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
	const at = 1_700_000_000_000
	base := ChallengeID(n, a, 0, at)
	if ChallengeID(n, a, 1, at) == base {
		t.Fatal("device index not bound")
	}
	if ChallengeID(n, a, 0, at+1) == base {
		t.Fatal("issue time not bound")
	}
	n[5] = 1
	if ChallengeID(n, a, 0, at) == base {
		t.Fatal("nonce not bound")
	}
	n[5] = 0
	a[0] = 1
	if ChallengeID(n, a, 0, at) == base {
		t.Fatal("address not bound")
	}
}

// Ids sort by issue time (the state stores challenges in id order), and
// their hashed tail differs between ids issued in the same millisecond.
func TestChallengeIDOrderedByIssueTime(t *testing.T) {
	a := make([]byte, 20)
	var prev [32]byte
	for i, at := range []int64{0, 1, 255, 256, 1_700_000_000_000, 1_700_000_000_001, 1 << 62} {
		n := make([]byte, 32)
		n[0] = byte(i)
		id := ChallengeID(n, a, 0, at)
		if got := int64(binary.BigEndian.Uint64(id[:8])); got != at {
			t.Fatalf("id %x starts with %d, want the issue time %d", id, got, at)
		}
		if i > 0 && bytes.Compare(prev[:], id[:]) >= 0 {
			t.Fatalf("id at %d (%x) does not sort after the previous one (%x)", at, id, prev)
		}
		prev = id
	}
	n := make([]byte, 32)
	x, y := ChallengeID(n, a, 0, 5), ChallengeID(n, a, 1, 5)
	if bytes.Equal(x[8:], y[8:]) {
		t.Fatal("ids issued in the same millisecond share their hashed tail")
	}
}
