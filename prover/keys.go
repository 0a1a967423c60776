package prover

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/truegpu/truegpu/verifier"
)

// ProvingKey is a Groth16 proving key for one profile's circuit, together
// with the compiled circuit and the matching verifying key.
type ProvingKey struct {
	profile *Profile
	ccs     *cs.R1CS
	pk      *groth16bn254.ProvingKey
	vk      *verifier.VerifyingKey
}

// Profile returns the profile the key proves.
func (k *ProvingKey) Profile() *Profile { return k.profile }

// VerifyingKey returns the verifying key that matches this proving key.
func (k *ProvingKey) VerifyingKey() *verifier.VerifyingKey { return k.vk }

// Constraints returns the number of R1CS constraints of the circuit.
func (k *ProvingKey) Constraints() int { return k.ccs.GetNbConstraints() }

func compileR1CS(p *Profile) (*cs.R1CS, error) {
	ccs, err := CompileCircuit(p)
	if err != nil {
		return nil, err
	}
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return nil, fmt.Errorf("prover: compiled circuit %s is %T, want BN254 R1CS", p.ID(), ccs)
	}
	return r, nil
}

// domainSize is the FFT domain of the circuit's setup.
func domainSize(ccs constraint.ConstraintSystem) uint64 {
	return ecc.NextPowerOfTwo(uint64(ccs.GetNbConstraints()))
}

func newProvingKey(p *Profile, ccs *cs.R1CS, gpk groth16.ProvingKey, gvk groth16.VerifyingKey) (*ProvingKey, *verifier.VerifyingKey, error) {
	pk, ok := gpk.(*groth16bn254.ProvingKey)
	if !ok {
		return nil, nil, fmt.Errorf("prover: setup for %s returned %T, want a BN254 proving key", p.ID(), gpk)
	}
	vk, err := verifier.FromGnark(gvk, p.Digest())
	if err != nil {
		return nil, nil, fmt.Errorf("prover: setup for %s: %w", p.ID(), err)
	}
	return &ProvingKey{profile: p, ccs: ccs, pk: pk, vk: vk}, vk, nil
}

const (
	pkMagic  = "TGPK"
	pkFormat = 2
)

// WriteTo writes the proving key:
//
//	"TGPK" | format (2) | profile digest (32) | verifying key (verifier encoding) | gnark proving key
//
// The circuit is not stored; ReadProvingKey recompiles it.
func (k *ProvingKey) WriteTo(w io.Writer) (int64, error) {
	var hdr bytes.Buffer
	hdr.WriteString(pkMagic)
	hdr.WriteByte(pkFormat)
	d := k.profile.Digest()
	hdr.Write(d[:])
	hdr.Write(k.vk.Encode())
	n, err := w.Write(hdr.Bytes())
	if err != nil {
		return int64(n), err
	}
	m, err := k.pk.WriteTo(w)
	return int64(n) + m, err
}

// ReadProvingKey reads a key written by WriteTo for profile p, checking
// that it was made for p. The points of the gnark key are decoded with
// subgroup checks; the key must still come from a trusted place (a
// ceremony transcript or a dev setup), as a malicious key yields invalid
// proofs, not false ones.
func ReadProvingKey(r io.Reader, p *Profile) (*ProvingKey, error) {
	br := bufio.NewReader(r)
	hdr := make([]byte, len(pkMagic)+1+32)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrKeyEncoding, err)
	}
	if string(hdr[:4]) == pkMagic && hdr[4] == 1 {
		return nil, fmt.Errorf("%w: a proving key of protocol version 1 (%s); %s needs a version %d key", ErrRetiredProfile, DescribeDigest([32]byte(hdr[5:])), p.ID(), pkFormat)
	}
	if string(hdr[:4]) != pkMagic || hdr[4] != pkFormat {
		return nil, fmt.Errorf("%w: not a TrueGPU proving key (format %d)", ErrKeyEncoding, pkFormat)
	}
	if d := p.Digest(); !bytes.Equal(hdr[5:], d[:]) {
		return nil, fmt.Errorf("%w: key is for %s, not %s", ErrKeyMismatch, DescribeDigest([32]byte(hdr[5:])), p.ID())
	}
	vkBytes := make([]byte, len((&verifier.VerifyingKey{}).Encode()))
	if _, err := io.ReadFull(br, vkBytes); err != nil {
		return nil, fmt.Errorf("%w: verifying key: %w", ErrKeyEncoding, err)
	}
	vk, err := verifier.DecodeVerifyingKey(vkBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyEncoding, err)
	}
	if vk.Digest != p.Digest() {
		return nil, fmt.Errorf("%w: embedded verifying key is for digest %x", ErrKeyMismatch, vk.Digest)
	}
	var gpk groth16bn254.ProvingKey
	if _, err := gpk.ReadFrom(br); err != nil {
		return nil, fmt.Errorf("%w: gnark proving key: %w", ErrKeyEncoding, err)
	}
	ccs, err := compileR1CS(p)
	if err != nil {
		return nil, err
	}
	if gpk.Domain.Cardinality != domainSize(ccs) {
		return nil, fmt.Errorf("%w: key domain %d, circuit %s needs %d", ErrKeyMismatch, gpk.Domain.Cardinality, p.ID(), domainSize(ccs))
	}
	return &ProvingKey{profile: p, ccs: ccs, pk: &gpk, vk: vk}, nil
}
