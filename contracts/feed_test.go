package contracts

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// abiReport mirrors TrueGPUFeed.Report for the ABI encoder.
type abiReport struct {
	ConfigDigest [32]byte
	Epoch        uint64
	Round        uint64
	Timestamp    uint64
	Root         [32]byte
	Count        uint64
	ValidFrom    uint64
	ExpiresAt    uint64
}

func toABI(r reputation.Report) abiReport {
	return abiReport{r.ConfigDigest, r.Epoch, r.Round, r.Timestamp, r.Root, r.Count, r.ValidFrom, r.ExpiresAt}
}

func addr(a ethcrypto.Address) common.Address { return common.Address(a) }

// fixture is a deployed feed with its oracle members and a reputation table.
type fixture struct {
	chain     *chain
	feed      *contract
	keys      []*ethcrypto.PrivateKey
	members   []ethcrypto.Address
	threshold int
	params    [32]byte
	domain    reputation.Domain
	entries   []reputation.Entry
	deployGas uint64
}

func newFixture(t testing.TB, n, k int) *fixture {
	f := &fixture{chain: newChain(t), threshold: k, params: reputation.ParamsDigest(reputation.DefaultParams())}
	for i := range n {
		key := ethcrypto.KeyFromSeed([]byte(fmt.Sprint("oracle-member-", i)))
		f.keys = append(f.keys, key)
		f.members = append(f.members, key.Address())
	}
	var sorted []common.Address
	for _, m := range reputation.SortedMembers(f.members) {
		sorted = append(sorted, addr(m))
	}
	f.feed, f.deployGas = f.chain.deploy("TrueGPUFeed", sorted, big.NewInt(int64(k)), f.params)
	f.domain = reputation.NewDomain(chainID, ethcrypto.Address(f.feed.addr))
	for i := range 5 {
		f.entries = append(f.entries, reputation.Entry{
			Address: ethcrypto.KeyFromSeed([]byte(fmt.Sprint("gpu-node-", i))).Address(),
			Score:   uint32(2000 + 1500*i),
			Status:  reputation.Status(1 + i%2),
		})
	}
	return f
}

// report closes an epoch over f.entries, timestamped at the chain's time.
func (f *fixture) report(t testing.TB, epoch uint64) (reputation.Report, *reputation.Tree) {
	cfg := reputation.ConfigDigest(f.members, f.threshold, f.params)
	r, tree, err := reputation.CloseEpoch(cfg, epoch, 1000+epoch, f.chain.time, f.entries)
	if err != nil {
		t.Fatal(err)
	}
	return r, tree
}

func (f *fixture) sign(t testing.TB, r reputation.Report, signers ...int) [][]byte {
	var sigs [][]byte
	for _, i := range signers {
		s, err := reputation.SignReport(f.keys[i], f.domain, r)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s[:])
	}
	// The Go verifier agrees with the contract on what a valid set is.
	return sigs
}

func proofArg(p [][32]byte) [][32]byte {
	if p == nil {
		return [][32]byte{}
	}
	return p
}

func TestFeedDigestMatchesGo(t *testing.T) {
	f := newFixture(t, 4, 3)
	r, _ := f.report(t, 1)
	out, _ := f.feed.mustCall("reportDigest", toABI(r))
	if got, want := out[0].([32]byte), reputation.ReportDigest(f.domain, r); got != want {
		t.Fatalf("contract digest %x, Go digest %x", got, want)
	}
	out, _ = f.feed.mustCall("configDigest")
	if got, want := out[0].([32]byte), reputation.ConfigDigest(f.members, 3, f.params); got != want {
		t.Fatalf("contract config digest %x, Go %x", got, want)
	}
	out, _ = f.feed.mustCall("domainSeparator")
	if got, want := out[0].([32]byte), f.domain.Separator(); got != want {
		t.Fatalf("contract domain separator %x, Go %x", got, want)
	}
}

func TestFeedSubmit(t *testing.T) {
	f := newFixture(t, 4, 3)
	r1, _ := f.report(t, 1)
	outsider := ethcrypto.KeyFromSeed([]byte("not-a-member"))
	outsiderSig, _ := reputation.SignReport(outsider, f.domain, r1)
	good := f.sign(t, r1, 0, 2, 3)
	badV := append([]byte{}, good[1]...)
	badV[64] = 99
	// The malleable twin (r, n-s, v^1) of a valid signature recovers the same
	// signer through ecrecover; the feed refuses it (EIP-2).
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	highS := append([]byte{}, good[1]...)
	new(big.Int).Sub(n, new(big.Int).SetBytes(highS[32:64])).FillBytes(highS[32:64])
	highS[64] ^= 1 // 27 <-> 28

	wrongCfg := r1
	wrongCfg.ConfigDigest[0] ^= 1

	tests := []struct {
		name   string
		r      reputation.Report
		sigs   [][]byte
		revert string
	}{
		{"too few signatures", r1, good[:2], "TooFewSignatures"},
		{"duplicated signer", r1, [][]byte{good[0], good[1], good[0]}, "DuplicateSigner"},
		{"non-member", r1, [][]byte{good[0], good[1], outsiderSig[:]}, "NotMember"},
		{"bad v", r1, [][]byte{good[0], badV, good[2]}, "InvalidSignature"},
		{"high-s twin", r1, [][]byte{good[0], highS, good[2]}, "InvalidSignature"},
		{"short signature", r1, [][]byte{good[0], good[1], good[2][:64]}, "InvalidSignature"},
		{"signatures over another report", wrongCfg, f.sign(t, wrongCfg, 0, 1, 2), "WrongConfigDigest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.feed.call(nil, "submit", toABI(tc.r), tc.sigs)
			wantRevert(t, err, tc.revert)
			if goErr := reputation.VerifySignatures(f.domain, tc.r, tc.sigs, f.members, 3); goErr == nil && tc.revert != "WrongConfigDigest" {
				t.Fatal("the Go verifier accepts a set the contract refuses")
			}
		})
	}

	// A report signed by the real Go code is accepted.
	if err := reputation.VerifySignatures(f.domain, r1, good, f.members, 3); err != nil {
		t.Fatalf("Go verifier: %v", err)
	}
	if _, _, err := f.feed.call(nil, "submit", toABI(r1), good); err != nil {
		t.Fatalf("submit: %v", err)
	}
	out, _ := f.feed.mustCall("latestEpoch")
	if out[0].(uint64) != 1 {
		t.Fatalf("latestEpoch = %v", out[0])
	}

	// The same epoch again, and an older one, are refused.
	_, _, err := f.feed.call(nil, "submit", toABI(r1), good)
	wantRevert(t, err, "StaleEpoch")
	r3, _ := f.report(t, 3)
	if _, _, err := f.feed.call(nil, "submit", toABI(r3), f.sign(t, r3, 1, 2, 3)); err != nil {
		t.Fatalf("submit epoch 3: %v", err)
	}
	r2, _ := f.report(t, 2)
	_, _, err = f.feed.call(nil, "submit", toABI(r2), f.sign(t, r2, 0, 1, 2))
	wantRevert(t, err, "StaleEpoch")
}

func TestFeedScoresAndFreshness(t *testing.T) {
	f := newFixture(t, 3, 2)
	_, _, err := f.feed.call(nil, "age")
	wantRevert(t, err, "NoReport")

	r, tree := f.report(t, 1)
	r.ExpiresAt = r.Timestamp + 86400 // valid for a day: staleness is the consumer's maxAge here
	if _, _, err := f.feed.call(nil, "submit", toABI(r), f.sign(t, r, 0, 1)); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.entries {
		proof, err := tree.Proof(e.Address)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := f.feed.mustCall("verifyScore", addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof))
		if !out[0].(bool) {
			t.Fatalf("verifyScore(%s) = false for a Go proof", e.Address)
		}
		// A wrong score, status or proof is refused.
		out, _ = f.feed.mustCall("verifyScore", addr(e.Address), big.NewInt(int64(e.Score)+1), uint8(e.Status), proofArg(proof))
		if out[0].(bool) {
			t.Fatal("verifyScore accepts a changed score")
		}
		out, _ = f.feed.mustCall("verifyScore", addr(e.Address), big.NewInt(int64(e.Score)), uint8(reputation.StatusTrusted+reputation.StatusProbation-e.Status), proofArg(proof))
		if out[0].(bool) {
			t.Fatal("verifyScore accepts a changed status")
		}
		bad := append([][32]byte{}, proof...)
		bad[len(bad)-1][31] ^= 1
		_, _, err = f.feed.call(nil, "requireScore", addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), bad, big.NewInt(3600))
		wantRevert(t, err, "InvalidProof")
	}

	e := f.entries[0]
	proof, _ := tree.Proof(e.Address)
	args := []any{addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof)}
	if _, _, err := f.feed.call(nil, "requireScore", append(args, big.NewInt(3600))...); err != nil {
		t.Fatalf("requireScore on a fresh report: %v", err)
	}
	// Two hours later the report is stale for a one-hour consumer.
	f.chain.time += 7200
	out, _ := f.feed.mustCall("isFresh", big.NewInt(3600))
	if out[0].(bool) {
		t.Fatal("isFresh(1h) true for a 2h-old report")
	}
	out, _ = f.feed.mustCall("age")
	if out[0].(*big.Int).Int64() != 7200 {
		t.Fatalf("age = %v, want 7200", out[0])
	}
	_, _, err = f.feed.call(nil, "requireScore", append(args, big.NewInt(3600))...)
	wantRevert(t, err, "ReportTooOld")
}

func TestFeedConstructorRejects(t *testing.T) {
	c := newChain(t)
	a, b := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	art, err := LoadArtifact("TrueGPUFeed")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		members   []common.Address
		threshold int64
	}{
		{"no members", nil, 1},
		{"threshold zero", []common.Address{a, b}, 0},
		{"threshold above n", []common.Address{a, b}, 3},
		{"unsorted", []common.Address{b, a}, 1},
		{"duplicate", []common.Address{a, a}, 1},
		{"zero address", []common.Address{{}, a}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.members == nil {
				tc.members = []common.Address{}
			}
			data, err := art.DeployData(tc.members, big.NewInt(tc.threshold), [32]byte{})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := runtimeCreate(c, data); err == nil {
				t.Fatal("deploy succeeded")
			}
		})
	}
}
