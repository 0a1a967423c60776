package verifier

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Sentinel errors of package verifier. Compare with errors.Is.
var (
	// ErrMalformedProof reports proof bytes that are not exactly one
	// canonical encoding of three valid, non-identity curve points.
	ErrMalformedProof = errors.New("verifier: malformed proof")
	// ErrMalformedKey reports verifying-key bytes that do not decode.
	ErrMalformedKey = errors.New("verifier: malformed verifying key")
	// ErrRetiredKey reports a well-formed key of a retired protocol
	// version; it wraps ErrMalformedKey, as such a key is unusable here.
	ErrRetiredKey = fmt.Errorf("%w: retired protocol version", ErrMalformedKey)
	// ErrNonCanonical reports a public input (root or digest) that is not a
	// canonical BN254 scalar field element.
	ErrNonCanonical = errors.New("verifier: public input is not a canonical field element")
	// ErrDigestMismatch reports public inputs whose profile digest is not
	// the verifying key's.
	ErrDigestMismatch = errors.New("verifier: profile digest does not match verifying key")
	// ErrInvalidProof reports a well-formed proof that does not verify.
	ErrInvalidProof = errors.New("verifier: proof does not verify")
	// ErrBatchShape reports a batch whose proofs and public inputs differ in
	// number.
	ErrBatchShape = errors.New("verifier: batch shape mismatch")
)

// NbPublicInputs is the number of public inputs of a work proof (protocol
// version 2): nonceHi, nonceLo, node, root, seed, digest.
const NbPublicInputs = 6

// SampleSeedSize is the size in bytes of the oracle's sample seed, public
// input 4.
const SampleSeedSize = 16

// PublicInputs are the field elements a proof is verified against, in
// circuit order. Build them with NewPublicInputs from the verifier's own
// record of the challenge, never from values a node supplied.
type PublicInputs [NbPublicInputs]fr.Element

// Indexes into PublicInputs.
const (
	InputNonceHi = iota
	InputNonceLo
	InputNode
	InputRoot
	InputSeed
	InputDigest
)

// NewPublicInputs encodes a challenge's public inputs:
//
//	nonceHi = big-endian integer of nonce[0:16]
//	nonceLo = big-endian integer of nonce[16:32]
//	node    = big-endian integer of the 20-byte address
//	root    = big-endian integer of root (must be < r)
//	seed    = big-endian integer of the 16-byte sample seed
//	digest  = big-endian integer of digest (must be < r)
//
// A root or digest ≥ r fails with ErrNonCanonical.
func NewPublicInputs(digest [32]byte, nonce [32]byte, node [20]byte, root [32]byte, seed [SampleSeedSize]byte) (PublicInputs, error) {
	var pub PublicInputs
	pub[InputNonceHi].SetBigInt(new(big.Int).SetBytes(nonce[:16]))
	pub[InputNonceLo].SetBigInt(new(big.Int).SetBytes(nonce[16:]))
	pub[InputNode].SetBigInt(new(big.Int).SetBytes(node[:]))
	pub[InputSeed].SetBigInt(new(big.Int).SetBytes(seed[:]))
	if err := pub[InputRoot].SetBytesCanonical(root[:]); err != nil {
		return pub, fmt.Errorf("%w: root %x", ErrNonCanonical, root)
	}
	if err := pub[InputDigest].SetBytesCanonical(digest[:]); err != nil {
		return pub, fmt.Errorf("%w: digest %x", ErrNonCanonical, digest)
	}
	return pub, nil
}

// Digest returns the profile digest the inputs carry.
func (p *PublicInputs) Digest() [32]byte { return p[InputDigest].Bytes() }

// Proof is a Groth16 proof (A ∈ G1, B ∈ G2, C ∈ G1) without commitments.
type Proof struct {
	A bn254.G1Affine
	B bn254.G2Affine
	C bn254.G1Affine
}

// ProofSize is the wire size of a proof: A, B, C in gnark-crypto's
// uncompressed encoding (64 + 128 + 64 bytes). Uncompressed points cost
// twice the bytes of compressed ones but decode without square roots,
// about 23 µs less per proof (an Fp2 square root for B, Fp ones for A and
// C), which is about 5% of the oracle's whole cost per attestation; the
// G2 subgroup check is needed either way.
const ProofSize = 2*g1ProofSize + g2ProofSize

// Encode returns the 256-byte wire encoding A | B | C.
func (p *Proof) Encode() []byte {
	out := make([]byte, 0, ProofSize)
	a, b, c := p.A.RawBytes(), p.B.RawBytes(), p.C.RawBytes()
	out = append(out, a[:]...)
	out = append(out, b[:]...)
	return append(out, c[:]...)
}

const (
	flagMask      = 0b11 << 6
	flagSmallest  = 0b10 << 6
	flagLargest   = 0b11 << 6
	flagRaw       = 0b00 << 6
	g1Size        = bn254.SizeOfG1AffineCompressed
	g2Size        = bn254.SizeOfG2AffineCompressed
	g1ProofSize   = bn254.SizeOfG1AffineUncompressed
	g2ProofSize   = bn254.SizeOfG2AffineUncompressed
	vkMagic       = "TGVK"
	vkFormat      = 2
	vkHeaderSize  = len(vkMagic) + 2 + 32
	vkSize        = vkHeaderSize + g1Size + 3*g2Size + (NbPublicInputs+1)*g1Size
	maxInputBytes = 1 << 12
)

// pointForm is how a point is laid out on the wire: compressed (verifying
// keys) or uncompressed (proofs).
type pointForm bool

const (
	compressed   pointForm = false
	uncompressed pointForm = true
)

// checkFlag requires the flag bits of a finite point in form f.
func (f pointForm) checkFlag(group string, b0 byte) error {
	fl := b0 & flagMask
	if f == uncompressed && fl != flagRaw {
		return fmt.Errorf("%s point flag %#x is not an uncompressed finite point", group, fl)
	}
	if f == compressed && fl != flagSmallest && fl != flagLargest {
		return fmt.Errorf("%s point flag %#x is not a compressed finite point", group, fl)
	}
	return nil
}

// decodeG1 decodes one non-identity G1 point in form f and requires the
// encoding to be canonical (re-encoding gives the same bytes, so
// coordinates are below the field modulus).
func decodeG1(b []byte, f pointForm) (bn254.G1Affine, error) {
	var p bn254.G1Affine
	size := g1Size
	if f == uncompressed {
		size = g1ProofSize
	}
	if len(b) != size {
		return p, fmt.Errorf("G1 point needs %d bytes, got %d", size, len(b))
	}
	if err := f.checkFlag("G1", b[0]); err != nil {
		return p, err
	}
	if _, err := p.SetBytes(b); err != nil { // checks curve and subgroup
		return p, fmt.Errorf("G1 point: %w", err)
	}
	if p.IsInfinity() { // an uncompressed (0, 0) reads as the identity
		return p, errors.New("G1 point is the identity")
	}
	var enc []byte
	if f == compressed {
		e := p.Bytes()
		enc = e[:]
	} else {
		e := p.RawBytes()
		enc = e[:]
	}
	if !bytes.Equal(enc, b) {
		return p, errors.New("G1 point encoding is not canonical")
	}
	return p, nil
}

// decodeG2 is decodeG1 for G2; SetBytes performs the G2 subgroup check.
func decodeG2(b []byte, f pointForm) (bn254.G2Affine, error) {
	var p bn254.G2Affine
	size := g2Size
	if f == uncompressed {
		size = g2ProofSize
	}
	if len(b) != size {
		return p, fmt.Errorf("G2 point needs %d bytes, got %d", size, len(b))
	}
	if err := f.checkFlag("G2", b[0]); err != nil {
		return p, err
	}
	if _, err := p.SetBytes(b); err != nil {
		return p, fmt.Errorf("G2 point: %w", err)
	}
	if p.IsInfinity() {
		return p, errors.New("G2 point is the identity")
	}
	var enc []byte
	if f == compressed {
		e := p.Bytes()
		enc = e[:]
	} else {
		e := p.RawBytes()
		enc = e[:]
	}
	if !bytes.Equal(enc, b) {
		return p, errors.New("G2 point encoding is not canonical")
	}
	return p, nil
}

// DecodeProof strictly decodes a wire proof: exactly ProofSize bytes, each
// point uncompressed, canonical, on the curve, in the prime-order subgroup
// and not the identity. It allocates nothing proportional to its input.
func DecodeProof(b []byte) (*Proof, error) {
	if len(b) != ProofSize {
		return nil, fmt.Errorf("%w: need exactly %d bytes, got %d", ErrMalformedProof, ProofSize, len(b))
	}
	var p Proof
	var err error
	if p.A, err = decodeG1(b[:g1ProofSize], uncompressed); err != nil {
		return nil, fmt.Errorf("%w: A: %w", ErrMalformedProof, err)
	}
	if p.B, err = decodeG2(b[g1ProofSize:g1ProofSize+g2ProofSize], uncompressed); err != nil {
		return nil, fmt.Errorf("%w: B: %w", ErrMalformedProof, err)
	}
	if p.C, err = decodeG1(b[g1ProofSize+g2ProofSize:], uncompressed); err != nil {
		return nil, fmt.Errorf("%w: C: %w", ErrMalformedProof, err)
	}
	return &p, nil
}

// VerifyingKey is a Groth16 verifying key for one profile's circuit, with
// the profile digest it was generated for.
type VerifyingKey struct {
	// Digest is the profile digest (public input 5) of the circuit.
	Digest [32]byte
	Alpha  bn254.G1Affine
	Beta   bn254.G2Affine
	Gamma  bn254.G2Affine
	Delta  bn254.G2Affine
	// IC are the public-input bases: IC[0] + Σ x_i·IC[i+1].
	IC [NbPublicInputs + 1]bn254.G1Affine

	pre *precomputed
}

// precomputed holds values derived from the key for fast verification.
type precomputed struct {
	alphaBeta  bn254.GT
	gammaLines [2][len(bn254.LoopCounter)]bn254.LineEvaluationAff
	deltaLines [2][len(bn254.LoopCounter)]bn254.LineEvaluationAff
}

// Encode returns the key's fixed-size encoding:
//
//	"TGVK" | format (2) | nbPublic (6) | digest (32) | α (G1) | β, γ, δ (G2) | IC[0..6] (G1)
//
// with points compressed (486 bytes).
func (vk *VerifyingKey) Encode() []byte {
	out := make([]byte, 0, vkSize)
	out = append(out, vkMagic...)
	out = append(out, vkFormat, NbPublicInputs)
	out = append(out, vk.Digest[:]...)
	a := vk.Alpha.Bytes()
	out = append(out, a[:]...)
	for _, g := range []*bn254.G2Affine{&vk.Beta, &vk.Gamma, &vk.Delta} {
		e := g.Bytes()
		out = append(out, e[:]...)
	}
	for i := range vk.IC {
		e := vk.IC[i].Bytes()
		out = append(out, e[:]...)
	}
	return out
}

// DecodeVerifyingKey strictly decodes an encoded key (see Encode) and
// precomputes its pairing values.
func DecodeVerifyingKey(b []byte) (*VerifyingKey, error) {
	if len(b) >= 6 && string(b[:4]) == vkMagic && b[4] == 1 && b[5] == 5 {
		return nil, fmt.Errorf("%w: this is a protocol version 1 key (5 public inputs, samples derived from the root alone); "+
			"this verifier checks version 2 work proofs (6 public inputs, the oracle's sample seed added): use the keys of the v2 profiles", ErrRetiredKey)
	}
	if len(b) != vkSize {
		return nil, fmt.Errorf("%w: need exactly %d bytes, got %d", ErrMalformedKey, vkSize, len(b))
	}
	if string(b[:4]) != vkMagic || b[4] != vkFormat || b[5] != NbPublicInputs {
		return nil, fmt.Errorf("%w: header %x is not TGVK format %d with %d public inputs", ErrMalformedKey, b[:6], vkFormat, NbPublicInputs)
	}
	vk := &VerifyingKey{}
	copy(vk.Digest[:], b[6:38])
	var d fr.Element
	if err := d.SetBytesCanonical(vk.Digest[:]); err != nil {
		return nil, fmt.Errorf("%w: digest: %w", ErrMalformedKey, ErrNonCanonical)
	}
	off := vkHeaderSize
	var err error
	if vk.Alpha, err = decodeG1(b[off:off+g1Size], compressed); err != nil {
		return nil, fmt.Errorf("%w: alpha: %w", ErrMalformedKey, err)
	}
	off += g1Size
	for i, g := range []*bn254.G2Affine{&vk.Beta, &vk.Gamma, &vk.Delta} {
		if *g, err = decodeG2(b[off:off+g2Size], compressed); err != nil {
			return nil, fmt.Errorf("%w: G2 element %d: %w", ErrMalformedKey, i, err)
		}
		off += g2Size
	}
	for i := range vk.IC {
		if vk.IC[i], err = decodeG1(b[off:off+g1Size], compressed); err != nil {
			return nil, fmt.Errorf("%w: IC[%d]: %w", ErrMalformedKey, i, err)
		}
		off += g1Size
	}
	if err := vk.Precompute(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	return vk, nil
}

// Precompute derives e(α, β) and the line evaluations of γ and δ. Keys
// from DecodeVerifyingKey or FromGnark are already precomputed; call it
// after building a key by hand.
func (vk *VerifyingKey) Precompute() error {
	ab, err := bn254.Pair([]bn254.G1Affine{vk.Alpha}, []bn254.G2Affine{vk.Beta})
	if err != nil {
		return err
	}
	vk.pre = &precomputed{
		alphaBeta:  ab,
		gammaLines: bn254.PrecomputeLines(vk.Gamma),
		deltaLines: bn254.PrecomputeLines(vk.Delta),
	}
	return nil
}

// Equal reports whether two keys encode identically.
func (vk *VerifyingKey) Equal(o *VerifyingKey) bool {
	return bytes.Equal(vk.Encode(), o.Encode())
}
