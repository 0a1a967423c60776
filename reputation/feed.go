package reputation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// Errors of the epoch feed. Compare with errors.Is.
var (
	// ErrNotInTree reports an address without a leaf in the tree.
	ErrNotInTree = errors.New("reputation: address not in tree")
	// ErrDuplicateEntry reports two entries for the same address.
	ErrDuplicateEntry = errors.New("reputation: duplicate tree entry")
	// ErrBadSignature reports a report signature that does not recover.
	ErrBadSignature = errors.New("reputation: bad report signature")
	// ErrNotMember reports a report signature by a key outside the members.
	ErrNotMember = errors.New("reputation: report signer is not a member")
	// ErrDuplicateSigner reports two signatures by the same member.
	ErrDuplicateSigner = errors.New("reputation: duplicate report signer")
	// ErrTooFewSignatures reports fewer valid member signatures than the
	// threshold.
	ErrTooFewSignatures = errors.New("reputation: too few report signatures")
	// ErrInvalidConfig reports an impossible member set or threshold.
	ErrInvalidConfig = errors.New("reputation: invalid feed configuration")
	// ErrInvalidWindow reports a report whose validity window is empty
	// (expires before it becomes valid).
	ErrInvalidWindow = errors.New("reputation: invalid report validity window")
	// ErrNotYetValid reports a report checked before its ValidFrom.
	ErrNotYetValid = errors.New("reputation: report not yet valid")
	// ErrExpired reports a report checked after its ExpiresAt.
	ErrExpired = errors.New("reputation: report expired")
)

// Entry is one leaf of an epoch's reputation table.
type Entry struct {
	Address ethcrypto.Address
	// Score is the overall score in basis points (0..10000).
	Score  uint32
	Status Status
}

// word returns v as a 32-byte big-endian ABI word.
func word(v uint64) []byte {
	var w [32]byte
	binary.BigEndian.PutUint64(w[24:], v)
	return w[:]
}

func addressWord(a ethcrypto.Address) []byte {
	var w [32]byte
	copy(w[12:], a[:])
	return w[:]
}

// LeafHash is the OpenZeppelin StandardMerkleTree leaf for e:
// keccak256(bytes.concat(keccak256(abi.encode(address, uint256 score, uint8 status)))).
func LeafHash(e Entry) [32]byte {
	inner := ethcrypto.Keccak256(addressWord(e.Address), word(uint64(e.Score)), word(uint64(e.Status)))
	return ethcrypto.Keccak256(inner[:])
}

// hashPair is OpenZeppelin's commutative keccak256 of the sorted pair.
func hashPair(a, b [32]byte) [32]byte {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return ethcrypto.Keccak256(a[:], b[:])
}

// Tree is a Merkle tree over epoch entries in the layout of OpenZeppelin's
// StandardMerkleTree.of(values, ["address","uint256","uint8"]): leaves sorted
// by hash, stored as a complete binary tree in an array with the leaves at
// the end in reverse order, internal nodes hashed as sorted pairs. Proofs
// verify with OpenZeppelin's MerkleProof.verify and with VerifyProof.
type Tree struct {
	nodes [][32]byte
	index map[ethcrypto.Address]int // address -> position in nodes
	count int
}

// BuildTree builds the tree of entries. Entry order does not matter. An
// empty table has the zero root.
func BuildTree(entries []Entry) (*Tree, error) {
	n := len(entries)
	t := &Tree{index: make(map[ethcrypto.Address]int, n), count: n}
	if n == 0 {
		return t, nil
	}
	type leaf struct {
		h    [32]byte
		addr ethcrypto.Address
	}
	leaves := make([]leaf, n)
	seen := make(map[ethcrypto.Address]bool, n)
	for i, e := range entries {
		if seen[e.Address] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateEntry, e.Address)
		}
		seen[e.Address] = true
		leaves[i] = leaf{LeafHash(e), e.Address}
	}
	slices.SortFunc(leaves, func(a, b leaf) int { return bytes.Compare(a.h[:], b.h[:]) })
	t.nodes = make([][32]byte, 2*n-1)
	for i, l := range leaves {
		pos := len(t.nodes) - 1 - i
		t.nodes[pos] = l.h
		t.index[l.addr] = pos
	}
	for i := len(t.nodes) - 1 - n; i >= 0; i-- {
		t.nodes[i] = hashPair(t.nodes[2*i+1], t.nodes[2*i+2])
	}
	return t, nil
}

// Root returns the tree's root (zero for an empty tree).
func (t *Tree) Root() [32]byte {
	if len(t.nodes) == 0 {
		return [32]byte{}
	}
	return t.nodes[0]
}

// Len returns the number of leaves.
func (t *Tree) Len() int { return t.count }

// Proof returns the sibling path from addr's leaf to the root.
func (t *Tree) Proof(addr ethcrypto.Address) ([][32]byte, error) {
	i, ok := t.index[addr]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotInTree, addr)
	}
	var proof [][32]byte
	for i > 0 {
		sib := i - 1
		if i%2 == 1 {
			sib = i + 1
		}
		proof = append(proof, t.nodes[sib])
		i = (i - 1) / 2
	}
	return proof, nil
}

// VerifyProof reports whether proof shows that e is a leaf under root.
func VerifyProof(root [32]byte, e Entry, proof [][32]byte) bool {
	h := LeafHash(e)
	for _, p := range proof {
		h = hashPair(h, p)
	}
	return h == root
}

// Report is an epoch's signed summary of the reputation table.
type Report struct {
	// ConfigDigest binds the report to the cluster configuration (members,
	// threshold, model parameters); see ConfigDigest.
	ConfigDigest [32]byte
	Epoch        uint64
	// Round is the Raft index (or term-and-index, by convention of the
	// producer) the table was closed at.
	Round uint64
	// Timestamp is the closing time in unix seconds.
	Timestamp uint64
	Root      [32]byte
	Count     uint64
	// ValidFrom and ExpiresAt bound, in unix seconds, the block times at
	// which the feed contract accepts the report (ValidFrom <= block time
	// <= ExpiresAt) and after which consumers refuse it; see ReportWindow.
	ValidFrom uint64
	ExpiresAt uint64
}

// Default validity window of a report around its timestamp.
const (
	// DefaultReportLifetime is how long after its timestamp a report
	// stays valid.
	DefaultReportLifetime = time.Hour
	// DefaultReportClockSkew is how long before its timestamp a report is
	// already valid: chains judge it by the time of their latest block,
	// which lags the oracle's clock by up to a block interval (more on an
	// idle chain), and clocks drift.
	DefaultReportClockSkew = 15 * time.Minute
)

// ReportWindow returns the validity window of a report closed at
// timestamp (unix seconds): [timestamp - skew, timestamp + lifetime],
// whole seconds, the start floored at 0 and the end capped at the largest
// uint64. Non-positive durations count as zero.
func ReportWindow(timestamp uint64, skew, lifetime time.Duration) (validFrom, expiresAt uint64) {
	s := uint64(max(skew, 0) / time.Second)
	l := uint64(max(lifetime, 0) / time.Second)
	validFrom = 0
	if timestamp > s {
		validFrom = timestamp - s
	}
	expiresAt = timestamp + l
	if expiresAt < timestamp {
		expiresAt = ^uint64(0)
	}
	return validFrom, expiresAt
}

// CheckWindow reports whether r is valid at unix time now: an error
// wrapping ErrInvalidWindow when ValidFrom > ExpiresAt, ErrNotYetValid
// before ValidFrom and ErrExpired after ExpiresAt, as the feed contract
// judges a submission at block time now.
func (r Report) CheckWindow(now uint64) error {
	switch {
	case r.ValidFrom > r.ExpiresAt:
		return fmt.Errorf("%w: epoch %d valid from %d but expires at %d", ErrInvalidWindow, r.Epoch, r.ValidFrom, r.ExpiresAt)
	case now < r.ValidFrom:
		return fmt.Errorf("%w: epoch %d is valid from %d, it is %d", ErrNotYetValid, r.Epoch, r.ValidFrom, now)
	case now > r.ExpiresAt:
		return fmt.Errorf("%w: epoch %d expired at %d, it is %d", ErrExpired, r.Epoch, r.ExpiresAt, now)
	}
	return nil
}

// Domain is the EIP-712 domain reports are signed under.
type Domain struct {
	Name              string
	Version           string
	ChainID           uint64
	VerifyingContract ethcrypto.Address
}

// DefaultDomainName and DefaultDomainVersion are the domain name and version
// the TrueGPU feed contract uses.
const (
	DefaultDomainName    = "TrueGPU Epoch Feed"
	DefaultDomainVersion = "1"
)

// NewDomain returns the TrueGPU feed domain for a chain and contract.
func NewDomain(chainID uint64, contract ethcrypto.Address) Domain {
	return Domain{Name: DefaultDomainName, Version: DefaultDomainVersion, ChainID: chainID, VerifyingContract: contract}
}

var (
	domainTypeHash = ethcrypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	// ReportTypeHash is keccak256 of the EIP-712 type of Report.
	ReportTypeHash = ethcrypto.Keccak256([]byte(ReportType))
)

// ReportType is the EIP-712 type string of Report.
const ReportType = "EpochReport(bytes32 configDigest,uint64 epoch,uint64 round,uint64 timestamp,bytes32 root,uint64 count,uint64 validFrom,uint64 expiresAt)"

// Separator returns the EIP-712 domain separator.
func (d Domain) Separator() [32]byte {
	name := ethcrypto.Keccak256([]byte(d.Name))
	version := ethcrypto.Keccak256([]byte(d.Version))
	return ethcrypto.Keccak256(domainTypeHash[:], name[:], version[:], word(d.ChainID), addressWord(d.VerifyingContract))
}

// StructHash returns the EIP-712 hashStruct of r.
func (r Report) StructHash() [32]byte {
	return ethcrypto.Keccak256(ReportTypeHash[:], r.ConfigDigest[:], word(r.Epoch), word(r.Round), word(r.Timestamp), r.Root[:], word(r.Count), word(r.ValidFrom), word(r.ExpiresAt))
}

// ReportDigest returns the EIP-712 digest keccak256(0x1901 ‖ domainSeparator
// ‖ hashStruct(report)) that members sign and contracts ecrecover.
func ReportDigest(d Domain, r Report) [32]byte {
	sep := d.Separator()
	sh := r.StructHash()
	return ethcrypto.Keccak256([]byte{0x19, 0x01}, sep[:], sh[:])
}

// SignReport signs r under d with key, returning r‖s‖v (v = 27/28).
func SignReport(key *ethcrypto.PrivateKey, d Domain, r Report) ([65]byte, error) {
	return key.SignHash(ReportDigest(d, r))
}

// ParamsDigest returns keccak256 of the ABI encoding of every parameter as a
// uint256 word, in declaration order (weights in dimension order).
func ParamsDigest(p Params) [32]byte {
	var b []byte
	for _, v := range []uint64{p.HalfLifeMs, p.ConfidenceK} {
		b = append(b, word(v)...)
	}
	for _, w := range p.Weights {
		b = append(b, word(uint64(w))...)
	}
	for _, v := range []uint64{p.InvalidWeight, p.MissWeight, p.FingerprintWeight, uint64(p.SlackBP),
		uint64(p.TrustedScoreBP), uint64(p.TrustedConfidenceBP), uint64(p.SuspectRateBP), p.SuspectMinNeg,
		uint64(p.RejectRateBP), p.RejectMinNeg, uint64(p.RejectCorrectnessBP), uint64(p.MaxPenalties), uint64(p.ToleranceBP)} {
		b = append(b, word(v)...)
	}
	return ethcrypto.Keccak256(b)
}

// SortedMembers returns members sorted ascending, as ConfigDigest and the
// feed contract order them.
func SortedMembers(members []ethcrypto.Address) []ethcrypto.Address {
	out := slices.Clone(members)
	slices.SortFunc(out, func(a, b ethcrypto.Address) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// ValidateConfig checks that members are distinct and non-zero and that
// 1 <= threshold <= len(members).
func ValidateConfig(members []ethcrypto.Address, threshold int) error {
	if len(members) == 0 || threshold < 1 || threshold > len(members) {
		return fmt.Errorf("%w: threshold %d of %d members (want 1 <= threshold <= members)", ErrInvalidConfig, threshold, len(members))
	}
	s := SortedMembers(members)
	for i, m := range s {
		if m.IsZero() {
			return fmt.Errorf("%w: zero address among members", ErrInvalidConfig)
		}
		if i > 0 && s[i-1] == m {
			return fmt.Errorf("%w: member %s listed twice", ErrInvalidConfig, m)
		}
	}
	return nil
}

// ConfigDigest returns keccak256(abi.encode(address[] members, uint256
// threshold, bytes32 paramsDigest)) with members sorted ascending. The feed
// contract computes the same value from its constructor arguments, so a
// report signed under another configuration is refused.
func ConfigDigest(members []ethcrypto.Address, threshold int, paramsDigest [32]byte) [32]byte {
	s := SortedMembers(members)
	b := make([]byte, 0, 32*(4+len(s)))
	b = append(b, word(3*32)...) // offset of the dynamic array
	b = append(b, word(uint64(threshold))...)
	b = append(b, paramsDigest[:]...)
	b = append(b, word(uint64(len(s)))...)
	for _, m := range s {
		b = append(b, addressWord(m)...)
	}
	return ethcrypto.Keccak256(b)
}

// VerifySignatures checks that sigs hold at least threshold valid signatures
// of r under d by distinct members. Like the feed contract it is strict: any
// unrecoverable signature, non-member signer or repeated signer fails the
// whole set, so the Go check and the on-chain check agree.
func VerifySignatures(d Domain, r Report, sigs [][]byte, members []ethcrypto.Address, threshold int) error {
	return VerifyDigestSignatures(ReportDigest(d, r), sigs, members, threshold)
}

// VerifyDigestSignatures checks that sigs hold at least threshold valid
// signatures of digest by distinct members, as strictly as
// VerifySignatures.
func VerifyDigestSignatures(digest [32]byte, sigs [][]byte, members []ethcrypto.Address, threshold int) error {
	if err := ValidateConfig(members, threshold); err != nil {
		return err
	}
	member := make(map[ethcrypto.Address]bool, len(members))
	for _, m := range members {
		member[m] = true
	}
	seen := make(map[ethcrypto.Address]bool, len(sigs))
	for i, sig := range sigs {
		a, err := ethcrypto.RecoverAddress(digest, sig)
		if err != nil {
			return fmt.Errorf("%w: signature %d: %w", ErrBadSignature, i, err)
		}
		if !member[a] {
			return fmt.Errorf("%w: signature %d recovers to %s", ErrNotMember, i, a)
		}
		if seen[a] {
			return fmt.Errorf("%w: signature %d repeats %s", ErrDuplicateSigner, i, a)
		}
		seen[a] = true
	}
	if len(seen) < threshold {
		return fmt.Errorf("%w: %d distinct member signatures, need %d", ErrTooFewSignatures, len(seen), threshold)
	}
	return nil
}

// CloseEpoch builds the tree over entries and returns the unsigned report,
// valid in the default window around timestamp (ReportWindow with
// DefaultReportClockSkew and DefaultReportLifetime; set ValidFrom and
// ExpiresAt before signing for another one).
func CloseEpoch(configDigest [32]byte, epoch, round, timestamp uint64, entries []Entry) (Report, *Tree, error) {
	t, err := BuildTree(entries)
	if err != nil {
		return Report{}, nil, err
	}
	from, until := ReportWindow(timestamp, DefaultReportClockSkew, DefaultReportLifetime)
	return Report{ConfigDigest: configDigest, Epoch: epoch, Round: round, Timestamp: timestamp, Root: t.Root(), Count: uint64(t.Len()),
		ValidFrom: from, ExpiresAt: until}, t, nil
}

// ConfigUpdateType is the EIP-712 type of a feed configuration change:
// the current members sign it (k of n, under the feed's domain) to replace
// themselves, the threshold and the parameters by the configuration whose
// ConfigDigest is newConfigDigest. version is the feed's configuration
// version after the change (the current one plus one), so a signed update
// cannot be replayed.
const ConfigUpdateType = "ConfigUpdate(bytes32 previousConfigDigest,bytes32 newConfigDigest,uint64 version)"

// ConfigUpdateTypeHash is keccak256 of ConfigUpdateType.
var ConfigUpdateTypeHash = ethcrypto.Keccak256([]byte(ConfigUpdateType))

// ConfigUpdateDigest returns the EIP-712 digest the current members sign
// to move the feed from configuration previous to next at version.
func ConfigUpdateDigest(d Domain, previous, next [32]byte, version uint64) [32]byte {
	sep := d.Separator()
	sh := ethcrypto.Keccak256(ConfigUpdateTypeHash[:], previous[:], next[:], word(version))
	return ethcrypto.Keccak256([]byte{0x19, 0x01}, sep[:], sh[:])
}

// SignConfigUpdate signs a configuration change with a current member's
// key, returning r‖s‖v (v = 27/28).
func SignConfigUpdate(key *ethcrypto.PrivateKey, d Domain, previous, next [32]byte, version uint64) ([65]byte, error) {
	return key.SignHash(ConfigUpdateDigest(d, previous, next, version))
}
