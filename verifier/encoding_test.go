package verifier_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254"

	"github.com/truegpu/truegpu/verifier"
)

// nonSubgroupG2 returns the compressed encoding of a point on the G2 twist
// that is not in the prime-order subgroup.
func nonSubgroupG2(t testing.TB) []byte {
	t.Helper()
	for x := byte(1); x < 255; x++ {
		var buf [bn254.SizeOfG2AffineCompressed]byte
		buf[0] = 0b10 << 6
		buf[63] = x
		var p bn254.G2Affine
		dec := bn254.NewDecoder(bytes.NewReader(buf[:]), bn254.NoSubgroupChecks())
		if err := dec.Decode(&p); err != nil {
			continue // x has no point
		}
		if !p.IsInSubGroup() {
			return buf[:]
		}
	}
	t.Fatal("no non-subgroup G2 point found")
	return nil
}

func TestDecodeProof(t *testing.T) {
	f := testFixture(t)
	valid := f.raw[0]
	p, err := verifier.DecodeProof(valid)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Encode(), valid) {
		t.Fatal("Encode(DecodeProof(b)) != b")
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	var inf bn254.G1Affine
	infBytes := inf.RawBytes()
	compressedA := f.proofs[0].A.Bytes()
	var notInSubgroup bn254.G2Affine
	if err := bn254.NewDecoder(bytes.NewReader(nonSubgroupG2(t)), bn254.NoSubgroupChecks()).Decode(&notInSubgroup); err != nil {
		t.Fatal(err)
	}
	rawNotInSubgroup := notInSubgroup.RawBytes()
	var negC bn254.G1Affine
	negC.Neg(&f.proofs[0].C)
	rawNegC := negC.RawBytes()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", valid[:verifier.ProofSize-1]},
		{"long", append(bytes.Clone(valid), 0)},
		{"A at infinity", edit(func(b []byte) []byte { copy(b, infBytes[:]); return b })},
		{"A all zero", edit(func(b []byte) []byte { clear(b[:64]); return b })},
		{"A compressed flag", edit(func(b []byte) []byte { b[0] |= 0b10 << 6; return b })},
		{"A compressed encoding", append(compressedA[:], valid[32:]...)},
		{"A x not canonical", edit(func(b []byte) []byte {
			for i := 1; i < 32; i++ {
				b[i] = 0xff
			}
			b[0] = 0x3f
			return b
		})},
		{"A not on curve", edit(func(b []byte) []byte { b[63] ^= 1; return b })},
		{"B not on curve", edit(func(b []byte) []byte { b[64+127] ^= 1; return b })},
		{"B not in subgroup", edit(func(b []byte) []byte { copy(b[64:192], rawNotInSubgroup[:]); return b })},
		{"C negated", edit(func(b []byte) []byte { copy(b[192:], rawNegC[:]); return b })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := verifier.DecodeProof(tc.b)
			if tc.name == "C negated" {
				// -C is a valid point: a different proof that must not
				// verify.
				if err != nil {
					t.Fatalf("DecodeProof: %v", err)
				}
				if verr := verifier.Verify(f.vk, p, f.pubs[0]); !errors.Is(verr, verifier.ErrInvalidProof) {
					t.Fatalf("Verify(-C) = %v, want ErrInvalidProof", verr)
				}
				return
			}
			if !errors.Is(err, verifier.ErrMalformedProof) {
				t.Fatalf("DecodeProof = %v, want ErrMalformedProof", err)
			}
		})
	}
}

func TestVerifyingKeyEncoding(t *testing.T) {
	f := testFixture(t)
	enc := f.vk.Encode()
	vk, err := verifier.DecodeVerifyingKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !vk.Equal(f.vk) || !bytes.Equal(vk.Encode(), enc) {
		t.Fatal("verifying key round trip changed the key")
	}
	if err := verifier.Verify(vk, f.proofs[0], f.pubs[0]); err != nil {
		t.Fatalf("Verify with decoded key: %v", err)
	}
	edit := func(off int, v byte) []byte { b := bytes.Clone(enc); b[off] ^= v; return b }
	tests := []struct {
		name string
		b    []byte
	}{
		{"short", enc[:len(enc)-1]},
		{"long", append(bytes.Clone(enc), 0)},
		{"magic", edit(0, 1)},
		{"format", edit(4, 1)},
		{"public input count", edit(5, 1)},
		{"digest not canonical", func() []byte {
			b := bytes.Clone(enc)
			for i := 6; i < 38; i++ {
				b[i] = 0xff
			}
			return b
		}()},
		{"alpha not on curve", edit(38+31, 1)},
		{"protocol version 1 key header", func() []byte {
			b := bytes.Clone(enc[:454])
			b[4], b[5] = 1, 5
			return b
		}()},
		{"beta not in subgroup", func() []byte {
			b := bytes.Clone(enc)
			copy(b[70:134], nonSubgroupG2(t))
			return b
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verifier.DecodeVerifyingKey(tc.b); !errors.Is(err, verifier.ErrMalformedKey) {
				t.Fatalf("DecodeVerifyingKey = %v, want ErrMalformedKey", err)
			}
		})
	}
}

func FuzzDecodeProof(f *testing.F) {
	fx := testFixture(f)
	for _, raw := range fx.raw[:2] {
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add(make([]byte, verifier.ProofSize))
	f.Add(bytes.Repeat([]byte{0xff}, verifier.ProofSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := verifier.DecodeProof(b)
		if err != nil {
			if !errors.Is(err, verifier.ErrMalformedProof) {
				t.Fatalf("error %v does not wrap ErrMalformedProof", err)
			}
			return
		}
		if !bytes.Equal(p.Encode(), b) {
			t.Fatalf("accepted a non-canonical encoding %x", b)
		}
		if !p.A.IsInSubGroup() || !p.B.IsInSubGroup() || !p.C.IsInSubGroup() || p.A.IsInfinity() || p.C.IsInfinity() || p.B.IsInfinity() {
			t.Fatal("accepted an identity or non-subgroup point")
		}
	})
}

// TestRetiredKeyMessage checks that a key of protocol version 1 is refused
// with a message that says so, not as a mere length error.
func TestRetiredKeyMessage(t *testing.T) {
	b := append([]byte("TGVK"), 1, 5)
	b = append(b, make([]byte, 448)...)
	_, err := verifier.DecodeVerifyingKey(b)
	if !errors.Is(err, verifier.ErrRetiredKey) || !errors.Is(err, verifier.ErrMalformedKey) {
		t.Fatalf("DecodeVerifyingKey(v1 key) = %v, want ErrRetiredKey", err)
	}
	for _, s := range []string{"version 1", "version 2"} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("message %q does not name %q", err, s)
		}
	}
}

func FuzzDecodeVerifyingKey(f *testing.F) {
	fx := testFixture(f)
	f.Add(fx.vk.Encode())
	f.Add([]byte("TGVK"))
	f.Add(make([]byte, len(fx.vk.Encode())))
	f.Fuzz(func(t *testing.T, b []byte) {
		vk, err := verifier.DecodeVerifyingKey(b)
		if err != nil {
			if !errors.Is(err, verifier.ErrMalformedKey) {
				t.Fatalf("error %v does not wrap ErrMalformedKey", err)
			}
			return
		}
		if !bytes.Equal(vk.Encode(), b) {
			t.Fatalf("accepted a non-canonical encoding %x", b)
		}
	})
}
