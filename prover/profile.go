package prover

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Sentinel errors of package prover. Compare with errors.Is.
var (
	// ErrUnknownProfile reports a profile name that is not defined.
	ErrUnknownProfile = errors.New("prover: unknown profile")
	// ErrInvalidProfile reports a profile whose parameters break a rule of
	// the protocol (see Profile.Validate).
	ErrInvalidProfile = errors.New("prover: invalid profile")
	// ErrShape reports matrices or result vectors whose length does not
	// match the profile.
	ErrShape = errors.New("prover: wrong shape")
	// ErrIndex reports a cell or word index outside the committed results.
	ErrIndex = errors.New("prover: index out of range")
	// ErrKeyMismatch reports a key that belongs to another profile or
	// circuit version.
	ErrKeyMismatch = errors.New("prover: key does not match profile")
	// ErrKeyEncoding reports a malformed proving key or ceremony file.
	ErrKeyEncoding = errors.New("prover: malformed key encoding")
	// ErrCeremony reports a ceremony contribution that does not verify or a
	// ceremony used out of order.
	ErrCeremony = errors.New("prover: ceremony check failed")
	// ErrRetiredProfile reports a profile of an earlier protocol version:
	// recognised, so the message can name it and its successor, and never
	// used.
	ErrRetiredProfile = errors.New("prover: retired profile version")
)

// CellsPerWord is the number of int32 cells packed into one leaf word of the
// commitment tree (4 × 32 = 128 bits, below the 254-bit field size).
const CellsPerWord = 4

// Profile is a named, versioned set of workload parameters. The parameters,
// not the name, define the challenge: two profiles with equal parameters and
// version have equal digests. Each (profile, version) has its own circuit
// and keys.
//
// A Profile is immutable once published; changing any parameter needs a new
// version.
type Profile struct {
	// Name is the profile label, e.g. "standard".
	Name string
	// Version is the circuit and parameter version; it enters the digest.
	Version uint32
	// M is the number of rows of A and C (a power of two).
	M int
	// N is the number of columns of B and C (a power of two).
	N int
	// K is the inner dimension: columns of A, rows of B (1..65536).
	K int
	// Q is the number of Fiat-Shamir sampled cells checked by a proof.
	Q int
}

// Profile bounds enforced by Validate.
const (
	maxDim     = 1 << 16
	maxK       = 1 << 16
	maxCells   = 1 << 30
	maxSamples = 256
)

// ProtocolVersion is the work-proof protocol version of the published
// profiles. Version 2 derives the sample positions from the oracle's sample
// seed, drawn after the commitment is on record; version 1 derived them
// from the node's root alone, which let a node grind roots.
const ProtocolVersion = 2

var profiles = []*Profile{
	{Name: "test", Version: ProtocolVersion, M: 16, N: 16, K: 32, Q: 4},
	{Name: "demo", Version: ProtocolVersion, M: 64, N: 64, K: 64, Q: 8},
	{Name: "standard", Version: ProtocolVersion, M: 1024, N: 1024, K: 256, Q: 20},
}

// retired are the profiles of earlier protocol versions. They are kept
// only to be recognised: a challenge, key or file of one is refused with a
// message naming it and the version this build speaks.
var retired = []*Profile{
	{Name: "test", Version: 1, M: 16, N: 16, K: 32, Q: 4},
	{Name: "demo", Version: 1, M: 64, N: 64, K: 64, Q: 8},
	{Name: "standard", Version: 1, M: 1024, N: 1024, K: 256, Q: 20},
}

// ProfileByID resolves "name/vN" (or a bare name, meaning the published
// version) to the published profile. A retired version fails with an error
// wrapping ErrRetiredProfile that names both versions; an unknown name or
// version wraps ErrUnknownProfile.
func ProfileByID(id string) (*Profile, error) {
	name, ver, hasVer := strings.Cut(id, "/v")
	p, err := ProfileByName(name)
	if err != nil || !hasVer {
		return p, err
	}
	v, perr := strconv.ParseUint(ver, 10, 32)
	switch {
	case perr != nil:
		return nil, fmt.Errorf("%w %q: the version must be a number, as in %s", ErrUnknownProfile, id, p.ID())
	case uint32(v) == p.Version:
		return p, nil
	case uint32(v) < p.Version:
		return nil, fmt.Errorf("%w: %s is retired; this build speaks %s", ErrRetiredProfile, id, p.ID())
	default:
		return nil, fmt.Errorf("%w %q: this build knows %s; upgrade it", ErrUnknownProfile, id, p.ID())
	}
}

// ProfileByDigest returns the published profile with the given parameter
// digest. The digest of a retired profile fails with an error wrapping
// ErrRetiredProfile that names it and its successor; any other digest wraps
// ErrUnknownProfile.
func ProfileByDigest(d [32]byte) (*Profile, error) {
	for _, p := range profiles {
		if p.Digest() == d {
			cp := *p
			return &cp, nil
		}
	}
	return nil, digestError(d)
}

// digestError explains a digest that is not a published profile's.
func digestError(d [32]byte) error {
	for _, r := range retired {
		if r.Digest() == d {
			cur, _ := ProfileByName(r.Name)
			return fmt.Errorf("%w: digest %x is %s's; this build speaks %s", ErrRetiredProfile, d[:8], r.ID(), cur.ID())
		}
	}
	return fmt.Errorf("%w: no published profile has digest %x", ErrUnknownProfile, d[:8])
}

// DescribeDigest names the profile a digest belongs to, for messages:
// "standard/v2", "standard/v1 (retired)", or the digest's first bytes.
func DescribeDigest(d [32]byte) string {
	if p, err := ProfileByDigest(d); err == nil {
		return p.ID()
	}
	for _, r := range retired {
		if r.Digest() == d {
			return r.ID() + " (retired)"
		}
	}
	return fmt.Sprintf("unknown profile digest %x", d[:8])
}

// ProfileByName returns a copy of the published profile with the given
// name. An unknown name returns an error wrapping ErrUnknownProfile.
func ProfileByName(name string) (*Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			cp := *p
			return &cp, nil
		}
	}
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownProfile, name, names)
}

// Profiles returns copies of the published profiles, smallest first.
func Profiles() []*Profile {
	out := make([]*Profile, len(profiles))
	for i, p := range profiles {
		cp := *p
		out[i] = &cp
	}
	return out
}

// ID returns "name/vVERSION", e.g. "standard/v2".
func (p *Profile) ID() string { return fmt.Sprintf("%s/v%d", p.Name, p.Version) }

// Cells returns the number of result cells, M·N.
func (p *Profile) Cells() int { return p.M * p.N }

// Words returns the number of leaf words of the commitment tree.
func (p *Profile) Words() int { return p.Cells() / CellsPerWord }

// Depth returns the number of levels between a leaf word and the root.
func (p *Profile) Depth() int { return bits.TrailingZeros(uint(p.Words())) }

// Chunks returns the number of PRG field elements per row of A (and per
// column of B): ceil(K/31).
func (p *Profile) Chunks() int { return (p.K + bytesPerChunk - 1) / bytesPerChunk }

// Validate reports every rule the parameters break, wrapped in
// ErrInvalidProfile.
func (p *Profile) Validate() error {
	var errs []error
	pow2 := func(v int) bool { return v > 0 && v&(v-1) == 0 }
	if p.Name == "" {
		errs = append(errs, errors.New("empty name"))
	}
	if !pow2(p.M) || p.M > maxDim {
		errs = append(errs, fmt.Errorf("M=%d must be a power of two ≤ %d", p.M, maxDim))
	}
	if !pow2(p.N) || p.N > maxDim {
		errs = append(errs, fmt.Errorf("N=%d must be a power of two ≤ %d", p.N, maxDim))
	}
	if pow2(p.M) && pow2(p.N) && (p.M*p.N < 2*CellsPerWord || p.M*p.N > maxCells) {
		errs = append(errs, fmt.Errorf("M·N=%d must be in [%d, %d]", p.M*p.N, 2*CellsPerWord, maxCells))
	}
	if p.K < 1 || p.K > maxK {
		errs = append(errs, fmt.Errorf("K=%d must be in [1, %d]", p.K, maxK))
	}
	if p.Q < 1 || p.Q > maxSamples {
		errs = append(errs, fmt.Errorf("Q=%d must be in [1, %d]", p.Q, maxSamples))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: %w", ErrInvalidProfile, p.ID(), errors.Join(errs...))
}

// Digest returns the parameter digest bound in every proof of this profile:
// the canonical big-endian encoding of the field element
//
//	D = Chain(TagProfile, Version, M, N, K, Q, CellsPerWord)
//
// (see docs/PROTOCOL.md). It is always a canonical field element.
func (p *Profile) Digest() [32]byte {
	d := p.digestElement()
	return d.Bytes()
}

func (p *Profile) digestElement() fr.Element {
	return chain(tagProfile,
		fromUint64(uint64(p.Version)),
		fromUint64(uint64(p.M)),
		fromUint64(uint64(p.N)),
		fromUint64(uint64(p.K)),
		fromUint64(uint64(p.Q)),
		fromUint64(CellsPerWord))
}
