package prover

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"

	"github.com/truegpu/truegpu/verifier"
)

// A ceremony transcript is everything the keys follow from: the phase-1
// contributions in order, the phase-1 beacon, the phase-2 contributions in
// order and the phase-2 beacon. Sealing is deterministic given those, so a
// verifier holding the transcript recomputes the keys and compares: nothing
// produced in between (the sealed phase-1 file, the phase-2 start) needs to
// be trusted. TranscriptSummary names a transcript by the SHA-256 of each
// file and the beacons, and its Digest binds them, in order, to the
// profile and to the verifying key they produce.

// Transcript is a whole ceremony's input.
type Transcript struct {
	Phase1  []io.Reader // phase-1 contributions, first to last (not the init file)
	Beacon1 []byte      // the beacon that sealed phase 1
	Phase2  []io.Reader // phase-2 contributions, first to last
	Beacon2 []byte      // the beacon that sealed phase 2
}

// TranscriptSummary identifies a transcript and the verifying key it
// produced. It is published beside the keys (truegpuctl ceremony seal
// writes PROFILE-vN.transcript).
type TranscriptSummary struct {
	// Profile is the profile id; ProfileDigest its digest.
	Profile       string
	ProfileDigest [32]byte
	// Phase1 and Phase2 are the SHA-256 of each contribution file, in order.
	Phase1, Phase2 [][32]byte
	// Beacon1 and Beacon2 are the beacons.
	Beacon1, Beacon2 []byte
	// VerifyingKey is the SHA-256 of the verifying key's encoding.
	VerifyingKey [32]byte
	// Digest is the transcript hash: SHA-256 of the fields above
	// (TranscriptSummary.digest).
	Digest [32]byte
}

const transcriptDomain = "truegpu ceremony transcript v1\x00"

// digest hashes the summary's fields in a fixed, length-prefixed order.
func (s *TranscriptSummary) digest() [32]byte {
	h := sha256.New()
	u := func(v uint64) { h.Write(binary.BigEndian.AppendUint64(nil, v)) }
	b := func(v []byte) { u(uint64(len(v))); h.Write(v) }
	h.Write([]byte(transcriptDomain))
	b([]byte(s.Profile))
	h.Write(s.ProfileDigest[:])
	for _, list := range [][][32]byte{s.Phase1, s.Phase2} {
		u(uint64(len(list)))
		for _, d := range list {
			h.Write(d[:])
		}
	}
	b(s.Beacon1)
	b(s.Beacon2)
	h.Write(s.VerifyingKey[:])
	return [32]byte(h.Sum(nil))
}

// hashingReader hashes everything read through it.
type hashingReader struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, h: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

// sum drains what is left (a decoder stops at its own end) and returns the
// hash of the whole stream.
func (h *hashingReader) sum() ([32]byte, error) {
	if _, err := io.Copy(io.Discard, h); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.h.Sum(nil)), nil
}

// deriveCommons verifies the phase-1 chain and applies the beacon: the
// sealed phase-1 parameters, re-derived rather than read from a file. It
// returns the contributions' hashes too.
func (c *Ceremony) deriveCommons(beacon []byte, contributions []io.Reader) (*mpcsetup.SrsCommons, [][32]byte, error) {
	if len(beacon) == 0 {
		return nil, nil, fmt.Errorf("%w: empty phase-1 beacon", ErrCeremony)
	}
	hrs := make([]*hashingReader, len(contributions))
	rs := make([]io.Reader, len(contributions))
	for i, r := range contributions {
		hrs[i] = newHashingReader(r)
		rs[i] = hrs[i]
	}
	chain, err := c.phase1Chain(rs)
	if err != nil {
		return nil, nil, err
	}
	sums := make([][32]byte, len(hrs))
	for i, h := range hrs {
		if sums[i], err = h.sum(); err != nil {
			return nil, nil, fmt.Errorf("phase-1 contribution %d: %w", i+1, err)
		}
	}
	commons := chain[len(chain)-1].Seal(beacon)
	return &commons, sums, nil
}

// CheckCommons re-derives the sealed phase-1 parameters from the phase-1
// contributions and the beacon and reports whether commons (a sealed
// phase-1 file) is exactly that. Participants of phase 2 run it before
// trusting the file they start from.
func (c *Ceremony) CheckCommons(commons io.Reader, beacon []byte, contributions ...io.Reader) error {
	derived, _, err := c.deriveCommons(beacon, contributions)
	if err != nil {
		return err
	}
	var want bytes.Buffer
	if err := c.writeHeader(&want, kindCommons); err != nil {
		return err
	}
	if err := writeTo(&want, derived); err != nil {
		return err
	}
	got, err := readCapped(commons, int64(want.Len())+1, "sealed phase-1 file")
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want.Bytes()) {
		return fmt.Errorf("%w: the sealed phase-1 file is not what the phase-1 contributions and the beacon produce", ErrCeremony)
	}
	return nil
}

// SealTranscript verifies a whole ceremony and returns its keys and their
// summary. The sealed phase-1 parameters are re-derived from the verified
// phase-1 chain and its beacon, never read from a file.
func (c *Ceremony) SealTranscript(t Transcript) (*ProvingKey, *verifier.VerifyingKey, *TranscriptSummary, error) {
	if len(t.Beacon2) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: empty phase-2 beacon", ErrCeremony)
	}
	commons, sums1, err := c.deriveCommons(t.Beacon1, t.Phase1)
	if err != nil {
		return nil, nil, nil, err
	}
	hrs := make([]*hashingReader, len(t.Phase2))
	rs := make([]io.Reader, len(t.Phase2))
	for i, r := range t.Phase2 {
		hrs[i] = newHashingReader(r)
		rs[i] = hrs[i]
	}
	last, evals, err := c.phase2Chain(commons, rs)
	if err != nil {
		return nil, nil, nil, err
	}
	sums2 := make([][32]byte, len(hrs))
	for i, h := range hrs {
		if sums2[i], err = h.sum(); err != nil {
			return nil, nil, nil, fmt.Errorf("phase-2 contribution %d: %w", i+1, err)
		}
	}
	gpk, gvk := last.Seal(commons, evals, t.Beacon2)
	pk, vk, err := newProvingKey(c.profile, c.ccs, gpk, gvk)
	if err != nil {
		return nil, nil, nil, err
	}
	s := &TranscriptSummary{
		Profile: c.profile.ID(), ProfileDigest: c.profile.Digest(),
		Phase1: sums1, Phase2: sums2,
		Beacon1: bytes.Clone(t.Beacon1), Beacon2: bytes.Clone(t.Beacon2),
		VerifyingKey: sha256.Sum256(vk.Encode()),
	}
	s.Digest = s.digest()
	return pk, vk, s, nil
}

// VerifyTranscript recomputes the keys from the transcript and checks that
// vk is the verifying key it produces; it returns the transcript's summary.
func (c *Ceremony) VerifyTranscript(t Transcript, vk *verifier.VerifyingKey) (*TranscriptSummary, error) {
	_, got, s, err := c.SealTranscript(t)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got.Encode(), vk.Encode()) {
		return nil, fmt.Errorf("%w: the verifying key is not the one this transcript produces (transcript %x)", ErrCeremony, s.Digest)
	}
	return s, nil
}

// Check reports whether the summary is consistent (its digest matches its
// fields) and names vk.
func (s *TranscriptSummary) Check(vk *verifier.VerifyingKey) error {
	if s.digest() != s.Digest {
		return fmt.Errorf("%w: transcript summary digest does not match its fields", ErrCeremony)
	}
	if sha256.Sum256(vk.Encode()) != s.VerifyingKey {
		return fmt.Errorf("%w: transcript %x names another verifying key", ErrCeremony, s.Digest)
	}
	return nil
}

// Equal reports whether two summaries name the same transcript and key.
func (s *TranscriptSummary) Equal(o *TranscriptSummary) bool {
	a, _ := s.MarshalJSON()
	b, _ := o.MarshalJSON()
	return bytes.Equal(a, b)
}

type transcriptJSON struct {
	Profile       string   `json:"profile"`
	ProfileDigest string   `json:"profile_digest"`
	Phase1        []string `json:"phase1_sha256"`
	Beacon1       string   `json:"beacon1"`
	Phase2        []string `json:"phase2_sha256"`
	Beacon2       string   `json:"beacon2"`
	VerifyingKey  string   `json:"verifying_key_sha256"`
	Digest        string   `json:"transcript_sha256"`
}

// maxSummaryBytes and maxContributions bound what ParseTranscriptSummary
// accepts.
const (
	maxSummaryBytes  = 1 << 20
	maxContributions = 4096
	maxBeaconBytes   = 1024
)

// MarshalJSON encodes the summary with hex strings.
func (s *TranscriptSummary) MarshalJSON() ([]byte, error) {
	hx := func(l [][32]byte) []string {
		out := make([]string, len(l))
		for i, d := range l {
			out[i] = hex.EncodeToString(d[:])
		}
		return out
	}
	return json.MarshalIndent(transcriptJSON{
		Profile: s.Profile, ProfileDigest: hex.EncodeToString(s.ProfileDigest[:]),
		Phase1: hx(s.Phase1), Beacon1: hex.EncodeToString(s.Beacon1),
		Phase2: hx(s.Phase2), Beacon2: hex.EncodeToString(s.Beacon2),
		VerifyingKey: hex.EncodeToString(s.VerifyingKey[:]), Digest: hex.EncodeToString(s.Digest[:]),
	}, "", "  ")
}

// ParseTranscriptSummary decodes a summary written by MarshalJSON. It
// checks the encoding and the digest, not the transcript itself (that is
// VerifyTranscript).
func ParseTranscriptSummary(b []byte) (*TranscriptSummary, error) {
	if len(b) > maxSummaryBytes {
		return nil, fmt.Errorf("%w: transcript summary of %d bytes (limit %d)", ErrKeyEncoding, len(b), maxSummaryBytes)
	}
	var j transcriptJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: transcript summary: %v", ErrKeyEncoding, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: transcript summary: data after the object", ErrKeyEncoding)
	}
	d32 := func(name, v string) ([32]byte, error) {
		raw, err := hex.DecodeString(v)
		if err != nil || len(raw) != 32 {
			return [32]byte{}, fmt.Errorf("%w: transcript summary: %s must be 64 hex digits", ErrKeyEncoding, name)
		}
		return [32]byte(raw), nil
	}
	list := func(name string, vs []string) ([][32]byte, error) {
		if len(vs) == 0 || len(vs) > maxContributions {
			return nil, fmt.Errorf("%w: transcript summary: %s needs 1..%d hashes, has %d", ErrKeyEncoding, name, maxContributions, len(vs))
		}
		out := make([][32]byte, len(vs))
		for i, v := range vs {
			var err error
			if out[i], err = d32(name, v); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	beacon := func(name, v string) ([]byte, error) {
		raw, err := hex.DecodeString(v)
		if err != nil || len(raw) == 0 || len(raw) > maxBeaconBytes {
			return nil, fmt.Errorf("%w: transcript summary: %s must be 1..%d bytes of hex", ErrKeyEncoding, name, maxBeaconBytes)
		}
		return raw, nil
	}
	s := &TranscriptSummary{Profile: j.Profile}
	var err error
	if s.Profile == "" || len(s.Profile) > 64 {
		return nil, fmt.Errorf("%w: transcript summary: profile must be 1..64 bytes", ErrKeyEncoding)
	}
	if s.ProfileDigest, err = d32("profile_digest", j.ProfileDigest); err != nil {
		return nil, err
	}
	if s.Phase1, err = list("phase1_sha256", j.Phase1); err != nil {
		return nil, err
	}
	if s.Phase2, err = list("phase2_sha256", j.Phase2); err != nil {
		return nil, err
	}
	if s.Beacon1, err = beacon("beacon1", j.Beacon1); err != nil {
		return nil, err
	}
	if s.Beacon2, err = beacon("beacon2", j.Beacon2); err != nil {
		return nil, err
	}
	if s.VerifyingKey, err = d32("verifying_key_sha256", j.VerifyingKey); err != nil {
		return nil, err
	}
	if s.Digest, err = d32("transcript_sha256", j.Digest); err != nil {
		return nil, err
	}
	if s.digest() != s.Digest {
		return nil, fmt.Errorf("%w: transcript summary digest does not match its fields", ErrCeremony)
	}
	return s, nil
}
