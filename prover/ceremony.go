package prover

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/truegpu/truegpu/verifier"
)

// Ceremony drives the Groth16 MPC setup of one profile's circuit with
// gnark's mpcsetup: phase 1 (powers of τ, sized by the circuit's domain),
// then phase 2 (circuit specific). Each participant contributes in turn;
// anyone can verify every contribution from the transcript; the
// coordinator seals each phase with a public random beacon chosen after the
// last contribution. The keys are secure if at least one contributor
// destroyed their randomness.
//
// Every ceremony file starts with a 4-byte kind and the profile digest, so
// files of different profiles or phases cannot be mixed:
//
//	"TGC1" phase-1 contribution, "TGCS" sealed phase-1 parameters,
//	"TGC2" phase-2 contribution.
type Ceremony struct {
	profile *Profile
	ccs     *cs.R1CS
}

const (
	kindPhase1  = "TGC1"
	kindCommons = "TGCS"
	kindPhase2  = "TGC2"
)

// NewCeremony compiles p's circuit for a ceremony.
func NewCeremony(p *Profile) (*Ceremony, error) {
	ccs, err := compileR1CS(p)
	if err != nil {
		return nil, err
	}
	return &Ceremony{profile: p, ccs: ccs}, nil
}

// DomainSize returns the phase-1 domain size (a power of two).
func (c *Ceremony) DomainSize() uint64 { return domainSize(c.ccs) }

func (c *Ceremony) writeHeader(w io.Writer, kind string) error {
	d := c.profile.Digest()
	_, err := w.Write(append([]byte(kind), d[:]...))
	return err
}

func (c *Ceremony) readHeader(r io.Reader, kind string) error {
	hdr := make([]byte, 4+32)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("%w: %s header: %w", ErrKeyEncoding, kind, err)
	}
	if string(hdr[:4]) != kind {
		return fmt.Errorf("%w: file is %q, want %q", ErrCeremony, hdr[:4], kind)
	}
	if d := c.profile.Digest(); !bytes.Equal(hdr[4:], d[:]) {
		return fmt.Errorf("%w: file is for %s, ceremony is for %s", ErrCeremony, DescribeDigest([32]byte(hdr[4:])), c.profile.ID())
	}
	return nil
}

func writeTo(w io.Writer, v io.WriterTo) error {
	bw := bufio.NewWriter(w)
	if _, err := v.WriteTo(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// Phase1Init writes the starting point of phase 1 (no secret involved).
func (c *Ceremony) Phase1Init(w io.Writer) error {
	if err := c.writeHeader(w, kindPhase1); err != nil {
		return err
	}
	return writeTo(w, mpcsetup.NewPhase1(c.DomainSize()))
}

func (c *Ceremony) readPhase1(r io.Reader) (*mpcsetup.Phase1, error) {
	n := c.DomainSize()
	br, err := c.checkedBody(r, kindPhase1, phase1Limit(n), func(b []byte) error { return checkPhase1Layout(b, n) })
	if err != nil {
		return nil, err
	}
	var p mpcsetup.Phase1
	if _, err := p.ReadFrom(br); err != nil {
		return nil, fmt.Errorf("%w: phase-1 file: %w", ErrKeyEncoding, err)
	}
	return &p, nil
}

// Phase1Contribute reads the previous phase-1 state, adds a contribution
// from fresh randomness (crypto/rand, discarded on return) and writes the
// new state.
func (c *Ceremony) Phase1Contribute(prev io.Reader, next io.Writer) error {
	p, err := c.readPhase1(prev)
	if err != nil {
		return err
	}
	p.Contribute()
	if err := c.writeHeader(next, kindPhase1); err != nil {
		return err
	}
	return writeTo(next, p)
}

// Phase1Verify checks every phase-1 contribution, in order, starting from
// the public initial state. It reports the first one that fails.
func (c *Ceremony) Phase1Verify(contributions ...io.Reader) error {
	_, err := c.phase1Chain(contributions)
	return err
}

func (c *Ceremony) phase1Chain(contributions []io.Reader) ([]*mpcsetup.Phase1, error) {
	if len(contributions) == 0 {
		return nil, fmt.Errorf("%w: phase 1 has no contributions", ErrCeremony)
	}
	prev := mpcsetup.NewPhase1(c.DomainSize())
	out := make([]*mpcsetup.Phase1, len(contributions))
	for i, r := range contributions {
		next, err := c.readPhase1(r)
		if err != nil {
			return nil, fmt.Errorf("phase-1 contribution %d: %w", i+1, err)
		}
		if err := prev.Verify(next); err != nil {
			return nil, fmt.Errorf("%w: phase-1 contribution %d: %w", ErrCeremony, i+1, err)
		}
		out[i], prev = next, next
	}
	return out, nil
}

// Phase1Seal verifies all phase-1 contributions, applies the beacon and
// writes the sealed parameters that phase 2 starts from.
func (c *Ceremony) Phase1Seal(beacon []byte, out io.Writer, contributions ...io.Reader) error {
	if len(beacon) == 0 {
		return fmt.Errorf("%w: empty beacon", ErrCeremony)
	}
	chain, err := c.phase1Chain(contributions)
	if err != nil {
		return err
	}
	commons := chain[len(chain)-1].Seal(beacon)
	if err := c.writeHeader(out, kindCommons); err != nil {
		return err
	}
	return writeTo(out, &commons)
}

func (c *Ceremony) readCommons(r io.Reader) (*mpcsetup.SrsCommons, error) {
	n := c.DomainSize()
	br, err := c.checkedBody(r, kindCommons, phase1Limit(n), func(b []byte) error { return checkCommonsLayout(b, n) })
	if err != nil {
		return nil, err
	}
	var s mpcsetup.SrsCommons
	if _, err := s.ReadFrom(br); err != nil {
		return nil, fmt.Errorf("%w: sealed phase-1 file: %w", ErrKeyEncoding, err)
	}
	if uint64(len(s.G2.Tau)) != c.DomainSize() {
		return nil, fmt.Errorf("%w: sealed phase 1 has domain %d, %s needs %d", ErrCeremony, len(s.G2.Tau), c.profile.ID(), c.DomainSize())
	}
	return &s, nil
}

// Phase2Init writes the starting point of phase 2 from the sealed phase-1
// parameters (deterministic; anyone can recompute it).
func (c *Ceremony) Phase2Init(commons io.Reader, w io.Writer) error {
	s, err := c.readCommons(commons)
	if err != nil {
		return err
	}
	var p mpcsetup.Phase2
	p.Initialize(c.ccs, s)
	if err := c.writeHeader(w, kindPhase2); err != nil {
		return err
	}
	return writeTo(w, &p)
}

func (c *Ceremony) readPhase2(r io.Reader) (*mpcsetup.Phase2, error) {
	br, err := c.checkedBody(r, kindPhase2, c.phase2Limit(), func(b []byte) error {
		return checkPhase2Layout(b, c.nbWires(), c.DomainSize())
	})
	if err != nil {
		return nil, err
	}
	var p mpcsetup.Phase2
	if _, err := p.ReadFrom(br); err != nil {
		return nil, fmt.Errorf("%w: phase-2 file: %w", ErrKeyEncoding, err)
	}
	return &p, nil
}

// Phase2Contribute reads the previous phase-2 state, contributes fresh
// randomness and writes the new state.
func (c *Ceremony) Phase2Contribute(prev io.Reader, next io.Writer) error {
	p, err := c.readPhase2(prev)
	if err != nil {
		return err
	}
	p.Contribute()
	if err := c.writeHeader(next, kindPhase2); err != nil {
		return err
	}
	return writeTo(next, p)
}

// Phase2Verify checks every phase-2 contribution, in order, starting from
// the state Phase2Init derives from the sealed phase-1 parameters.
func (c *Ceremony) Phase2Verify(commons io.Reader, contributions ...io.Reader) error {
	s, err := c.readCommons(commons)
	if err != nil {
		return err
	}
	_, _, err = c.phase2Chain(s, contributions)
	return err
}

func (c *Ceremony) phase2Chain(s *mpcsetup.SrsCommons, contributions []io.Reader) (*mpcsetup.Phase2, *mpcsetup.Phase2Evaluations, error) {
	if len(contributions) == 0 {
		return nil, nil, fmt.Errorf("%w: phase 2 has no contributions", ErrCeremony)
	}
	// Decode every file before the (expensive) deterministic start.
	next := make([]*mpcsetup.Phase2, len(contributions))
	for i, r := range contributions {
		var err error
		if next[i], err = c.readPhase2(r); err != nil {
			return nil, nil, fmt.Errorf("phase-2 contribution %d: %w", i+1, err)
		}
	}
	prev := new(mpcsetup.Phase2)
	evals := prev.Initialize(c.ccs, s)
	for i, next := range next {
		if err := prev.Verify(next); err != nil {
			return nil, nil, fmt.Errorf("%w: phase-2 contribution %d: %w", ErrCeremony, i+1, err)
		}
		prev = next
	}
	return prev, &evals, nil
}

// Seal verifies all phase-2 contributions, applies the beacon and returns
// the production keys. It trusts commons to be the sealed phase 1 of the
// ceremony's phase-1 transcript; SealTranscript re-derives it instead and
// is what truegpuctl ceremony seal uses.
func (c *Ceremony) Seal(commons io.Reader, beacon []byte, contributions ...io.Reader) (*ProvingKey, *verifier.VerifyingKey, error) {
	if len(beacon) == 0 {
		return nil, nil, fmt.Errorf("%w: empty beacon", ErrCeremony)
	}
	s, err := c.readCommons(commons)
	if err != nil {
		return nil, nil, err
	}
	last, evals, err := c.phase2Chain(s, contributions)
	if err != nil {
		return nil, nil, err
	}
	gpk, gvk := last.Seal(s, evals, beacon)
	return newProvingKey(c.profile, c.ccs, gpk, gvk)
}
