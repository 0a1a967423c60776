package prover

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// gnark's ceremony decoders allocate from length fields they read (a domain
// size, slice lengths) before reading the data. Ceremony files come from
// other participants, so every length field that drives an allocation is
// checked here, on the raw bytes, against what the circuit implies before
// the file reaches a gnark decoder. Files are also size-capped.

var errLayout = errors.New("unexpected layout")

// layoutScanner walks gnark-crypto's BN254 point encoding: each point is
// compressed (G1 32, G2 64 bytes) or, when its top two bits are 00,
// uncompressed (twice that).
type layoutScanner struct {
	b   []byte
	off int
}

func (s *layoutScanner) need(n int) error {
	if n < 0 || s.off+n > len(s.b) {
		return fmt.Errorf("%w: truncated at byte %d", errLayout, s.off)
	}
	return nil
}

func (s *layoutScanner) point(g2 bool) error {
	size := 32
	if g2 {
		size = 64
	}
	if err := s.need(1); err != nil {
		return err
	}
	if s.b[s.off]>>6 == 0 {
		size *= 2
	}
	if err := s.need(size); err != nil {
		return err
	}
	s.off += size
	return nil
}

func (s *layoutScanner) points(n uint64, g2 bool) error {
	for i := uint64(0); i < n; i++ {
		if err := s.point(g2); err != nil {
			return err
		}
	}
	return nil
}

func (s *layoutScanner) uint(n int) (uint64, error) {
	if err := s.need(n); err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range s.b[s.off : s.off+n] {
		v = v<<8 | uint64(c)
	}
	s.off += n
	return v, nil
}

// readCapped reads all of r, failing if it holds more than limit bytes.
func readCapped(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyEncoding, what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyEncoding, what, limit)
	}
	return b, nil
}

// phase1Limit bounds a phase-1 or sealed phase-1 file of domain n:
// (2n-2)+2n G1 and n G2 points, uncompressed at worst, plus proofs.
func phase1Limit(n uint64) int64 {
	return int64((4*n)*64+n*128) + 1<<16
}

// checkPhase1Layout checks the domain size of a phase-1 file body: three
// update proofs (G1, G2) followed by the parameters, which start with N.
func checkPhase1Layout(b []byte, n uint64) error {
	s := &layoutScanner{b: b}
	for i := 0; i < 3; i++ {
		if err := s.point(false); err != nil {
			return err
		}
		if err := s.point(true); err != nil {
			return err
		}
	}
	return checkDomainField(s, n)
}

func checkDomainField(s *layoutScanner, n uint64) error {
	got, err := s.uint(8)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("%w: domain size %d, want %d", errLayout, got, n)
	}
	return nil
}

// checkCommonsLayout checks the domain size that starts sealed phase-1
// parameters.
func checkCommonsLayout(b []byte, n uint64) error {
	return checkDomainField(&layoutScanner{b: b}, n)
}

// checkPhase2Layout checks a phase-2 file body: no commitments, then δ in
// G1, then the PKK and Z slices, whose lengths must not exceed the
// circuit's private wires and domain size.
func checkPhase2Layout(b []byte, maxPKK, maxZ uint64) error {
	s := &layoutScanner{b: b}
	nbCommitments, err := s.uint(2)
	if err != nil {
		return err
	}
	if nbCommitments != 0 {
		return fmt.Errorf("%w: %d commitments, work-proof circuits have none", errLayout, nbCommitments)
	}
	if err := s.point(false); err != nil {
		return err
	}
	for _, lim := range []uint64{maxPKK, maxZ} {
		l, err := s.uint(4)
		if err != nil {
			return err
		}
		if l > lim {
			return fmt.Errorf("%w: slice of %d points, at most %d expected", errLayout, l, lim)
		}
		if err := s.points(l, false); err != nil {
			return err
		}
	}
	return nil
}

func (c *Ceremony) nbWires() uint64 {
	return uint64(c.ccs.NbInternalVariables + c.ccs.GetNbSecretVariables() + c.ccs.GetNbPublicVariables())
}

func (c *Ceremony) phase2Limit() int64 {
	return int64((c.nbWires()+c.DomainSize())*64+2*128) + 1<<16
}

// checkedBody reads a ceremony file, checks its header and layout and
// returns a reader over its body.
func (c *Ceremony) checkedBody(r io.Reader, kind string, limit int64, check func([]byte) error) (io.Reader, error) {
	if err := c.readHeader(r, kind); err != nil {
		return nil, err
	}
	body, err := readCapped(r, limit, kind+" file")
	if err != nil {
		return nil, err
	}
	if err := check(body); err != nil {
		return nil, fmt.Errorf("%w: %s file for %s: %w", ErrKeyEncoding, kind, c.profile.ID(), err)
	}
	return bytes.NewReader(body), nil
}
