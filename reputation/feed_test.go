package reputation

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

func hex32(t testing.TB, s string) [32]byte {
	t.Helper()
	var out [32]byte
	b, err := hex.DecodeString(s[2:])
	if err != nil || len(b) != 32 {
		t.Fatalf("bad bytes32 %q", s)
	}
	copy(out[:], b)
	return out
}

// TestTreeMatchesOpenZeppelin checks the Go tree against roots and proofs
// computed by OpenZeppelin's @openzeppelin/merkle-tree 1.0.8 (see
// contracts/scripts/merkle-vectors.js).
func TestTreeMatchesOpenZeppelin(t *testing.T) {
	raw, err := os.ReadFile("testdata/oz_merkle_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Values [][3]string `json:"values"`
		Root   string      `json:"root"`
		Proofs [][]string  `json:"proofs"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(len(c.Values)), func(t *testing.T) {
			var entries []Entry
			for _, v := range c.Values {
				score, _ := strconv.ParseUint(v[1], 10, 32)
				status, _ := strconv.ParseUint(v[2], 10, 8)
				entries = append(entries, Entry{Address: ethcrypto.MustParseAddress(v[0]), Score: uint32(score), Status: Status(status)})
			}
			tree, err := BuildTree(entries)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tree.Root(), hex32(t, c.Root); got != want {
				t.Fatalf("root = %x, want %x", got, want)
			}
			for i, e := range entries {
				proof, err := tree.Proof(e.Address)
				if err != nil {
					t.Fatal(err)
				}
				if len(proof) != len(c.Proofs[i]) {
					t.Fatalf("entry %d: proof length %d, want %d", i, len(proof), len(c.Proofs[i]))
				}
				for j := range proof {
					if proof[j] != hex32(t, c.Proofs[i][j]) {
						t.Fatalf("entry %d: proof[%d] differs from OpenZeppelin's", i, j)
					}
				}
				if !VerifyProof(tree.Root(), e, proof) {
					t.Fatalf("entry %d: proof does not verify", i)
				}
			}
		})
	}
}

func testEntries(n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = Entry{
			Address: ethcrypto.KeyFromSeed([]byte(fmt.Sprint("entry", i))).Address(),
			Score:   uint32(i * 37 % MaxBP),
			Status:  Status(i%4 + 1),
		}
	}
	return out
}

func TestTreeProofs(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 6, 17, 64} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			entries := testEntries(n)
			tree, err := BuildTree(entries)
			if err != nil {
				t.Fatal(err)
			}
			if tree.Len() != n {
				t.Fatalf("Len() = %d", tree.Len())
			}
			if n == 0 {
				if tree.Root() != ([32]byte{}) {
					t.Fatal("empty tree root is not zero")
				}
				return
			}
			// Entry order does not matter.
			rev := make([]Entry, n)
			for i := range entries {
				rev[n-1-i] = entries[i]
			}
			tree2, _ := BuildTree(rev)
			if tree2.Root() != tree.Root() {
				t.Fatal("root depends on entry order")
			}
			for _, e := range entries {
				proof, err := tree.Proof(e.Address)
				if err != nil {
					t.Fatal(err)
				}
				if !VerifyProof(tree.Root(), e, proof) {
					t.Fatalf("proof for %s does not verify", e.Address)
				}
				// A changed score or status, or a wrong proof, fails.
				bad := e
				bad.Score++
				if VerifyProof(tree.Root(), bad, proof) {
					t.Fatal("proof verifies a changed score")
				}
				bad = e
				bad.Status = StatusTrusted + StatusRejected - e.Status
				if bad.Status != e.Status && VerifyProof(tree.Root(), bad, proof) {
					t.Fatal("proof verifies a changed status")
				}
				if len(proof) > 0 {
					broken := append([][32]byte{}, proof...)
					broken[0][0] ^= 1
					if VerifyProof(tree.Root(), e, broken) {
						t.Fatal("tampered proof verifies")
					}
				}
			}
			if _, err := tree.Proof(ethcrypto.Address{0xee}); !errors.Is(err, ErrNotInTree) {
				t.Fatalf("Proof(absent) err = %v", err)
			}
		})
	}
}

func TestBuildTreeDuplicate(t *testing.T) {
	e := testEntries(2)
	e[1].Address = e[0].Address
	if _, err := BuildTree(e); !errors.Is(err, ErrDuplicateEntry) {
		t.Fatalf("err = %v, want ErrDuplicateEntry", err)
	}
}

// TestEIP712DomainSeparator checks the domain encoding against the example
// in EIP-712 ("Ether Mail").
func TestEIP712DomainSeparator(t *testing.T) {
	d := Domain{Name: "Ether Mail", Version: "1", ChainID: 1,
		VerifyingContract: ethcrypto.MustParseAddress("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")}
	want := hex32(t, "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f")
	if got := d.Separator(); got != want {
		t.Fatalf("Separator() = %x, want %x", got, want)
	}
}

func testConfig(n int) ([]*ethcrypto.PrivateKey, []ethcrypto.Address) {
	var keys []*ethcrypto.PrivateKey
	var addrs []ethcrypto.Address
	for i := range n {
		k := ethcrypto.KeyFromSeed([]byte(fmt.Sprint("member", i)))
		keys = append(keys, k)
		addrs = append(addrs, k.Address())
	}
	return keys, addrs
}

func TestVerifySignatures(t *testing.T) {
	keys, members := testConfig(4)
	outsider := ethcrypto.KeyFromSeed([]byte("outsider"))
	domain := NewDomain(31337, ethcrypto.Address{0xfe})
	cfg := ConfigDigest(members, 3, ParamsDigest(DefaultParams()))
	report, _, err := CloseEpoch(cfg, 7, 1234, 1_700_000_000, testEntries(5))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k *ethcrypto.PrivateKey, r Report) []byte {
		s, err := SignReport(k, domain, r)
		if err != nil {
			t.Fatal(err)
		}
		return s[:]
	}
	s0, s1, s2, s3 := sign(keys[0], report), sign(keys[1], report), sign(keys[2], report), sign(keys[3], report)
	other := report
	other.Epoch++
	tampered := append([]byte{}, s0...)
	tampered[64] = 30

	tests := []struct {
		name    string
		sigs    [][]byte
		thresh  int
		members []ethcrypto.Address
		want    error
	}{
		{"exactly k", [][]byte{s0, s1, s2}, 3, members, nil},
		{"all n", [][]byte{s3, s2, s1, s0}, 3, members, nil},
		{"too few", [][]byte{s0, s1}, 3, members, ErrTooFewSignatures},
		{"none", nil, 3, members, ErrTooFewSignatures},
		{"duplicate signer", [][]byte{s0, s1, s0}, 3, members, ErrDuplicateSigner},
		{"non-member", [][]byte{s0, s1, sign(outsider, report)}, 3, members, ErrNotMember},
		{"signed another report", [][]byte{s0, s1, sign(keys[2], other)}, 3, members, ErrNotMember},
		{"malformed", [][]byte{s0, s1, tampered}, 3, members, ErrBadSignature},
		{"threshold above n", [][]byte{s0}, 5, members, ErrInvalidConfig},
		{"threshold zero", [][]byte{s0}, 0, members, ErrInvalidConfig},
		{"duplicate member", [][]byte{s0}, 1, []ethcrypto.Address{members[0], members[0]}, ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignatures(domain, report, tc.sigs, tc.members, tc.thresh)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A signature under another domain (chain id) is not a member signature.
	otherDomain := NewDomain(1, ethcrypto.Address{0xfe})
	if err := VerifySignatures(otherDomain, report, [][]byte{s0, s1, s2}, members, 3); !errors.Is(err, ErrNotMember) {
		t.Fatalf("cross-domain err = %v, want ErrNotMember", err)
	}
}

func TestConfigDigest(t *testing.T) {
	_, members := testConfig(3)
	pd := ParamsDigest(DefaultParams())
	d := ConfigDigest(members, 2, pd)
	rev := []ethcrypto.Address{members[2], members[1], members[0]}
	if ConfigDigest(rev, 2, pd) != d {
		t.Fatal("config digest depends on member order")
	}
	if ConfigDigest(members, 3, pd) == d {
		t.Fatal("config digest ignores the threshold")
	}
	if ConfigDigest(members[:2], 2, pd) == d {
		t.Fatal("config digest ignores the members")
	}
	p := DefaultParams()
	p.HalfLifeMs++
	if ConfigDigest(members, 2, ParamsDigest(p)) == d {
		t.Fatal("config digest ignores the parameters")
	}
}

func BenchmarkBuildTree10k(b *testing.B) {
	entries := testEntries(10_000)
	for b.Loop() {
		if _, err := BuildTree(entries); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignatures3of5(b *testing.B) {
	keys, members := testConfig(5)
	domain := NewDomain(1, ethcrypto.Address{1})
	r := Report{Epoch: 1}
	var sigs [][]byte
	for _, k := range keys[:3] {
		s, _ := SignReport(k, domain, r)
		sigs = append(sigs, s[:])
	}
	for b.Loop() {
		if err := VerifySignatures(domain, r, sigs, members, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReportWindow(t *testing.T) {
	for _, c := range []struct {
		ts             uint64
		skew, lifetime time.Duration
		from, until    uint64
	}{
		{1_700_000_000, 15 * time.Minute, time.Hour, 1_700_000_000 - 900, 1_700_000_000 + 3600},
		{100, 15 * time.Minute, time.Hour, 0, 3700},                         // start floored at 0
		{^uint64(0) - 10, 0, time.Hour, ^uint64(0) - 10, ^uint64(0)},        // end capped
		{1000, -time.Minute, -time.Second, 1000, 1000},                      // negative counts as zero
		{1000, 1500 * time.Millisecond, 2500 * time.Millisecond, 999, 1002}, // whole seconds
	} {
		from, until := ReportWindow(c.ts, c.skew, c.lifetime)
		if from != c.from || until != c.until {
			t.Errorf("ReportWindow(%d, %v, %v) = %d, %d; want %d, %d", c.ts, c.skew, c.lifetime, from, until, c.from, c.until)
		}
	}
	r, _, err := CloseEpoch([32]byte{1}, 1, 2, 10_000, testEntries(2))
	if err != nil {
		t.Fatal(err)
	}
	if from, until := ReportWindow(10_000, DefaultReportClockSkew, DefaultReportLifetime); r.ValidFrom != from || r.ExpiresAt != until {
		t.Fatalf("CloseEpoch window [%d, %d], want the default [%d, %d]", r.ValidFrom, r.ExpiresAt, from, until)
	}
	for now, want := range map[uint64]error{
		r.ValidFrom - 1: ErrNotYetValid, r.ValidFrom: nil, 10_000: nil, r.ExpiresAt: nil, r.ExpiresAt + 1: ErrExpired,
	} {
		if err := r.CheckWindow(now); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("CheckWindow(%d) = %v, want %v", now, err, want)
		}
	}
	r.ValidFrom, r.ExpiresAt = 20, 19
	if err := r.CheckWindow(19); !errors.Is(err, ErrInvalidWindow) {
		t.Fatalf("empty window: %v", err)
	}
}

// TestReportDigestBindsWindow: moving either end of the window changes
// the digest, so a relayer cannot stretch a signed report's validity.
func TestReportDigestBindsWindow(t *testing.T) {
	d := NewDomain(31337, ethcrypto.Address{0xfe})
	r, _, err := CloseEpoch([32]byte{1}, 1, 2, 10_000, testEntries(2))
	if err != nil {
		t.Fatal(err)
	}
	base := ReportDigest(d, r)
	a, b := r, r
	a.ExpiresAt++
	b.ValidFrom--
	if ReportDigest(d, a) == base || ReportDigest(d, b) == base || ReportDigest(d, a) == ReportDigest(d, b) {
		t.Fatal("the report digest does not bind the validity window")
	}
	want := ethcrypto.Keccak256([]byte("EpochReport(bytes32 configDigest,uint64 epoch,uint64 round,uint64 timestamp,bytes32 root,uint64 count,uint64 validFrom,uint64 expiresAt)"))
	if ReportTypeHash != want {
		t.Fatal("ReportTypeHash is not the hash of the type string the contract uses")
	}
}

func TestConfigUpdateSignatures(t *testing.T) {
	keys, members := testConfig(4)
	d := NewDomain(31337, ethcrypto.Address{0xfe})
	prev := ConfigDigest(members, 3, [32]byte{7})
	_, next := testConfig(2)
	nextDigest := ConfigDigest(next, 2, [32]byte{7})
	digest := ConfigUpdateDigest(d, prev, nextDigest, 2)
	var sigs [][]byte
	for _, k := range keys[:3] {
		s, err := SignConfigUpdate(k, d, prev, nextDigest, 2)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s[:])
	}
	if err := VerifyDigestSignatures(digest, sigs, members, 3); err != nil {
		t.Fatal(err)
	}
	if err := VerifyDigestSignatures(digest, sigs[:2], members, 3); !errors.Is(err, ErrTooFewSignatures) {
		t.Fatalf("two of three: %v", err)
	}
	// Another version (a replay) or another target is another digest.
	for _, other := range [][32]byte{ConfigUpdateDigest(d, prev, nextDigest, 3), ConfigUpdateDigest(d, prev, prev, 2), ConfigUpdateDigest(d, nextDigest, nextDigest, 2)} {
		if err := VerifyDigestSignatures(other, sigs, members, 3); !errors.Is(err, ErrNotMember) {
			t.Fatalf("signatures verify for another update: %v", err)
		}
	}
}
