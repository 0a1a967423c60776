package prover

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/truegpu/truegpu/verifier"
)

func readers(bs ...[]byte) []io.Reader {
	out := make([]io.Reader, len(bs))
	for i, b := range bs {
		out[i] = bytes.NewReader(b)
	}
	return out
}

func TestCeremony(t *testing.T) {
	p := tinyProfile
	c, err := NewCeremony(p)
	if err != nil {
		t.Fatal(err)
	}
	step := func(f func(w io.Writer) error) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := f(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	init1 := step(c.Phase1Init)
	p1a := step(func(w io.Writer) error { return c.Phase1Contribute(bytes.NewReader(init1), w) })
	p1b := step(func(w io.Writer) error { return c.Phase1Contribute(bytes.NewReader(p1a), w) })
	// (Phase1Seal below verifies the whole chain.)
	// Out of order, or skipping a contribution, fails.
	if err := c.Phase1Verify(readers(p1b)...); !errors.Is(err, ErrCeremony) {
		t.Fatalf("Phase1Verify(skipping the first) = %v, want ErrCeremony", err)
	}
	tampered := append([]byte(nil), p1b...)
	tampered[len(tampered)-40] ^= 1
	if err := c.Phase1Verify(readers(p1a, tampered)...); err == nil {
		t.Fatal("Phase1Verify accepted a tampered contribution")
	}
	commons := step(func(w io.Writer) error { return c.Phase1Seal([]byte("beacon 1"), w, readers(p1a, p1b)...) })

	init2 := step(func(w io.Writer) error { return c.Phase2Init(bytes.NewReader(commons), w) })
	p2a := step(func(w io.Writer) error { return c.Phase2Contribute(bytes.NewReader(init2), w) })
	// A phase-1 file where a phase-2 file belongs is refused. (Seal below
	// verifies the phase-2 chain; a separate Phase2Verify would repeat the
	// costly phase-2 start.)
	if err := c.Phase2Verify(bytes.NewReader(commons), readers(p1a)...); !errors.Is(err, ErrCeremony) {
		t.Fatalf("Phase2Verify(phase-1 file) = %v, want ErrCeremony", err)
	}
	pk, vk, err := c.Seal(bytes.NewReader(commons), []byte("beacon 2"), readers(p2a)...)
	if err != nil {
		t.Fatal(err)
	}
	_, devVK, err := UnsafeDevKeys(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if vk.Equal(devVK) {
		t.Fatal("ceremony keys equal the dev keys")
	}

	nonce, node := testNonce(51), testAddress(52)
	proofBytes, root, err := Prove(pk, p, nonce, node, testSeed(53), Compute(p, nonce))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := verifier.DecodeProof(proofBytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := p.PublicInputs(nonce, node, root, testSeed(53))
	if err := verifier.Verify(vk, proof, pub); err != nil {
		t.Fatalf("proof under ceremony keys: %v", err)
	}
	if err := verifier.Verify(devVK, proof, pub); !errors.Is(err, verifier.ErrInvalidProof) {
		t.Fatalf("ceremony proof under dev key = %v, want ErrInvalidProof", err)
	}

	// Files of another profile are refused.
	other, err := NewCeremony(mustProfile(t, "test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Phase1Verify(readers(p1a)...); !errors.Is(err, ErrCeremony) {
		t.Fatalf("Phase1Verify(other profile) = %v, want ErrCeremony", err)
	}
}

// ceremonyFile returns a ceremony file of the given kind for c's profile
// with body b.
func ceremonyFile(c *Ceremony, kind string, body []byte) []byte {
	d := c.profile.Digest()
	return append(append([]byte(kind), d[:]...), body...)
}

// hostileLengths are files whose length fields would make gnark's decoders
// allocate far more than the circuit needs.
func hostileLengths(c *Ceremony) map[string][]byte {
	g1 := func() []byte { b := make([]byte, 32); b[0] = 0b10 << 6; return b }
	g2 := func() []byte { b := make([]byte, 64); b[0] = 0b10 << 6; return b }
	var proofs []byte
	for i := 0; i < 3; i++ {
		proofs = append(append(proofs, g1()...), g2()...)
	}
	huge64 := []byte{0, 0, 0x10, 0, 0, 0, 0, 0}
	return map[string][]byte{
		"phase1 huge domain":   ceremonyFile(c, kindPhase1, append(proofs, huge64...)),
		"commons huge domain":  ceremonyFile(c, kindCommons, huge64),
		"phase2 commitments":   ceremonyFile(c, kindPhase2, []byte{0xff, 0xff}),
		"phase2 huge PKK":      ceremonyFile(c, kindPhase2, append(append([]byte{0, 0}, g1()...), 0xff, 0xff, 0xff, 0xff)),
		"phase1 truncated":     ceremonyFile(c, kindPhase1, proofs[:50]),
		"phase2 empty":         ceremonyFile(c, kindPhase2, nil),
		"commons wrong domain": ceremonyFile(c, kindCommons, []byte{0, 0, 0, 0, 0, 0, 0, 2}),
	}
}

func TestCeremonyRejectsHostileLengths(t *testing.T) {
	c, err := NewCeremony(tinyProfile)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range hostileLengths(c) {
		t.Run(name, func(t *testing.T) {
			var err error
			switch string(b[:4]) {
			case kindPhase1:
				_, err = c.readPhase1(bytes.NewReader(b))
			case kindCommons:
				_, err = c.readCommons(bytes.NewReader(b))
			default:
				_, err = c.readPhase2(bytes.NewReader(b))
			}
			if !errors.Is(err, ErrKeyEncoding) {
				t.Fatalf("err = %v, want ErrKeyEncoding", err)
			}
		})
	}
	big := make([]byte, phase1Limit(c.DomainSize())+100)
	copy(big, ceremonyFile(c, kindPhase1, nil))
	if _, err := c.readPhase1(bytes.NewReader(big)); !errors.Is(err, ErrKeyEncoding) {
		t.Fatalf("oversized file: err = %v, want ErrKeyEncoding", err)
	}
}

// FuzzCeremonyFiles feeds arbitrary bytes to the three ceremony decoders:
// they must fail cleanly, never panic or allocate without bound.
func FuzzCeremonyFiles(f *testing.F) {
	c, err := NewCeremony(tinyProfile)
	if err != nil {
		f.Fatal(err)
	}
	var init1 bytes.Buffer
	if err := c.Phase1Init(&init1); err != nil {
		f.Fatal(err)
	}
	f.Add(init1.Bytes()[:4096])
	for _, b := range hostileLengths(c) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		var err error
		switch string(b[:4]) {
		case kindPhase1:
			_, err = c.readPhase1(bytes.NewReader(b))
		case kindCommons:
			_, err = c.readCommons(bytes.NewReader(b))
		default:
			_, err = c.readPhase2(bytes.NewReader(b))
		}
		if err != nil && !errors.Is(err, ErrKeyEncoding) && !errors.Is(err, ErrCeremony) {
			t.Fatalf("error %v wraps neither ErrKeyEncoding nor ErrCeremony", err)
		}
	})
}
