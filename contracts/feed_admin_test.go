package contracts

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// TestFeedValidityWindow: the feed accepts a report only while the block
// time is inside its signed window, refuses an empty window, and consumers
// are refused once the latest report has expired.
func TestFeedValidityWindow(t *testing.T) {
	f := newFixture(t, 3, 2)
	r, tree := f.report(t, 1)
	r.ValidFrom, r.ExpiresAt = f.chain.time+10, f.chain.time+100
	sigs := f.sign(t, r, 0, 1)

	_, _, err := f.feed.call(nil, "submit", toABI(r), sigs)
	wantRevert(t, err, "ReportNotYetValid")
	f.chain.time = r.ExpiresAt + 1
	_, _, err = f.feed.call(nil, "submit", toABI(r), sigs)
	wantRevert(t, err, "ReportExpired")

	// Stretching the window invalidates the signatures.
	stretched := r
	stretched.ExpiresAt += 3600
	_, _, err = f.feed.call(nil, "submit", toABI(stretched), sigs)
	wantRevert(t, err, "NotMember")

	empty := r
	empty.ValidFrom, empty.ExpiresAt = r.ExpiresAt+1, r.ExpiresAt
	_, _, err = f.feed.call(nil, "submit", toABI(empty), f.sign(t, empty, 0, 1))
	wantRevert(t, err, "InvalidWindow")

	// Both ends are inclusive.
	f.chain.time = r.ValidFrom
	if _, _, err := f.feed.call(nil, "submit", toABI(r), sigs); err != nil {
		t.Fatalf("submit at validFrom: %v", err)
	}
	r2, _ := f.report(t, 2)
	r2.ExpiresAt = f.chain.time
	if _, _, err := f.feed.call(nil, "submit", toABI(r2), f.sign(t, r2, 1, 2)); err != nil {
		t.Fatalf("submit at expiresAt: %v", err)
	}

	// The latest report (epoch 2, same table) expires now: one second later
	// consumers are refused even with a generous maxAge.
	e := f.entries[0]
	proof, _ := tree.Proof(e.Address)
	args := []any{addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof), big.NewInt(1 << 40)}
	if _, _, err := f.feed.call(nil, "requireScore", args...); err != nil {
		t.Fatalf("requireScore at expiresAt: %v", err)
	}
	f.chain.time++
	_, _, err = f.feed.call(nil, "requireScore", args...)
	wantRevert(t, err, "ReportExpired")
	out, _ := f.feed.mustCall("isFresh", big.NewInt(1<<40))
	if out[0].(bool) {
		t.Fatal("isFresh true for an expired report")
	}
}

// TestFeedPause: only the guardian pauses; a paused feed refuses reports
// and consumers; unpausing restores both; a renounced guardian can no
// longer pause.
func TestFeedPause(t *testing.T) {
	f := newFixture(t, 3, 2)
	r, tree := f.report(t, 1)
	if _, _, err := f.feed.call(nil, "submit", toABI(r), f.sign(t, r, 0, 1)); err != nil {
		t.Fatal(err)
	}
	e := f.entries[0]
	proof, _ := tree.Proof(e.Address)
	args := []any{addr(e.Address), big.NewInt(int64(e.Score)), uint8(e.Status), proofArg(proof), big.NewInt(3600)}
	if _, _, err := f.feed.call(nil, "requireScore", args...); err != nil {
		t.Fatal(err)
	}
	out, _ := f.feed.mustCall("guardian")
	if out[0].(common.Address) != f.chain.from {
		t.Fatalf("guardian %v, want the deployer %v", out[0], f.chain.from)
	}

	// Someone else cannot pause.
	deployer := f.chain.from
	f.chain.from = common.HexToAddress("0xbad")
	_, _, err := f.feed.call(nil, "setPaused", true)
	wantRevert(t, err, "NotGuardian")
	_, _, err = f.feed.call(nil, "setGuardian", f.chain.from)
	wantRevert(t, err, "NotGuardian")
	f.chain.from = deployer

	f.feed.mustCall("setPaused", true)
	out, _ = f.feed.mustCall("paused")
	if !out[0].(bool) {
		t.Fatal("paused() false after setPaused(true)")
	}
	r2, _ := f.report(t, 2)
	sigs2 := f.sign(t, r2, 1, 2)
	_, _, err = f.feed.call(nil, "submit", toABI(r2), sigs2)
	wantRevert(t, err, "FeedPaused")
	_, _, err = f.feed.call(nil, "requireScore", args...)
	wantRevert(t, err, "FeedPaused")

	f.feed.mustCall("setPaused", false)
	if _, _, err := f.feed.call(nil, "submit", toABI(r2), sigs2); err != nil {
		t.Fatalf("submit after unpausing: %v", err)
	}

	// Renounced: nobody can pause any more.
	f.feed.mustCall("setGuardian", common.Address{})
	_, _, err = f.feed.call(nil, "setPaused", true)
	wantRevert(t, err, "NotGuardian")
}

// rotation signs the change of f's feed to (members, k, params) by the
// given current members, at the feed's next version.
func (f *fixture) rotation(t testing.TB, prev [32]byte, version uint64, next []ethcrypto.Address, k int, params [32]byte, signers ...*ethcrypto.PrivateKey) [][]byte {
	t.Helper()
	nextDigest := reputation.ConfigDigest(next, k, params)
	var sigs [][]byte
	for _, key := range signers {
		s, err := reputation.SignConfigUpdate(key, f.domain, prev, nextDigest, version)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s[:])
	}
	return sigs
}

func sortedArg(members []ethcrypto.Address) []common.Address {
	out := []common.Address{}
	for _, m := range reputation.SortedMembers(members) {
		out = append(out, addr(m))
	}
	return out
}

// TestFeedConfigRotation: k of the current n members replace the member
// set and threshold; afterwards reports under the old configuration (old
// digest, or new digest signed by old members) are refused, reports of the
// new members are accepted, and the old members cannot rotate again nor
// replay their signed update.
func TestFeedConfigRotation(t *testing.T) {
	f := newFixture(t, 4, 3)
	oldDigest := reputation.ConfigDigest(f.members, 3, f.params)
	r1, _ := f.report(t, 1)
	if _, _, err := f.feed.call(nil, "submit", toABI(r1), f.sign(t, r1, 0, 1, 2)); err != nil {
		t.Fatal(err)
	}

	// The new set keeps members 2 and 3, adds two, threshold 2 of 4.
	var newKeys []*ethcrypto.PrivateKey
	for i := range 2 {
		newKeys = append(newKeys, ethcrypto.KeyFromSeed([]byte(fmt.Sprint("new-oracle-member-", i))))
	}
	newKeys = append(newKeys, f.keys[2], f.keys[3])
	var newMembers []ethcrypto.Address
	for _, k := range newKeys {
		newMembers = append(newMembers, k.Address())
	}
	newDigest := reputation.ConfigDigest(newMembers, 2, f.params)

	out, _ := f.feed.mustCall("configUpdateDigest", newDigest)
	if got, want := out[0].([32]byte), reputation.ConfigUpdateDigest(f.domain, oldDigest, newDigest, 2); got != want {
		t.Fatalf("contract config-update digest %x, Go %x", got, want)
	}

	update := func(sigs [][]byte, members []ethcrypto.Address, k int64) error {
		_, _, err := f.feed.call(nil, "updateConfig", sortedArg(members), big.NewInt(k), f.params, sigs)
		return err
	}
	outsider := ethcrypto.KeyFromSeed([]byte("not-a-member"))
	// Refused: too few current members, an outsider among them, signed
	// for another target, signed for a replayed version, invalid new set.
	wantRevert(t, update(f.rotation(t, oldDigest, 2, newMembers, 2, f.params, f.keys[0], f.keys[1]), newMembers, 2), "TooFewSignatures")
	wantRevert(t, update(f.rotation(t, oldDigest, 2, newMembers, 2, f.params, f.keys[0], f.keys[1], outsider), newMembers, 2), "NotMember")
	wantRevert(t, update(f.rotation(t, oldDigest, 2, newMembers, 3, f.params, f.keys[0], f.keys[1], f.keys[2]), newMembers, 2), "NotMember")
	wantRevert(t, update(f.rotation(t, oldDigest, 1, newMembers, 2, f.params, f.keys[0], f.keys[1], f.keys[2]), newMembers, 2), "NotMember")
	wantRevert(t, update(f.rotation(t, oldDigest, 2, newMembers, 5, f.params, f.keys[0], f.keys[1], f.keys[2]), newMembers, 5), "InvalidConfig")
	// The new members cannot rotate in themselves.
	wantRevert(t, update(f.rotation(t, oldDigest, 2, newMembers, 2, f.params, newKeys[0], newKeys[1], newKeys[2]), newMembers, 2), "NotMember")

	good := f.rotation(t, oldDigest, 2, newMembers, 2, f.params, f.keys[3], f.keys[0], f.keys[1])
	if err := update(good, newMembers, 2); err != nil {
		t.Fatalf("updateConfig by 3 of 4 current members: %v", err)
	}
	for method, want := range map[string]any{"configDigest": newDigest, "configVersion": uint64(2), "threshold": big.NewInt(2), "memberCount": big.NewInt(4), "latestEpoch": uint64(1)} {
		out, _ := f.feed.mustCall(method)
		if fmt.Sprint(out[0]) != fmt.Sprint(want) {
			t.Errorf("%s = %v after the update, want %v", method, out[0], want)
		}
	}
	out, _ = f.feed.mustCall("getMembers")
	if fmt.Sprint(out[0]) != fmt.Sprint(sortedArg(newMembers)) {
		t.Errorf("getMembers = %v, want %v", out[0], sortedArg(newMembers))
	}

	// Reports under the old configuration are refused.
	r2old, _ := f.report(t, 2)
	_, _, err := f.feed.call(nil, "submit", toABI(r2old), f.sign(t, r2old, 0, 1, 2))
	wantRevert(t, err, "WrongConfigDigest")
	// The new digest signed by removed members is refused too.
	r2 := r2old
	r2.ConfigDigest = newDigest
	_, _, err = f.feed.call(nil, "submit", toABI(r2), f.sign(t, r2, 0, 1))
	wantRevert(t, err, "NotMember")
	// The new members' report is accepted (2 of 4 now).
	var newSigs [][]byte
	for _, k := range newKeys[:2] {
		s, err := reputation.SignReport(k, f.domain, r2)
		if err != nil {
			t.Fatal(err)
		}
		newSigs = append(newSigs, s[:])
	}
	if _, _, err := f.feed.call(nil, "submit", toABI(r2), newSigs); err != nil {
		t.Fatalf("the new members' report was refused: %v", err)
	}

	// The old members' update replayed, and a further update signed by
	// removed members, are refused.
	wantRevert(t, update(good, newMembers, 2), "NotMember")
	wantRevert(t, update(f.rotation(t, newDigest, 3, f.members, 3, f.params, f.keys[0], f.keys[1]), f.members, 3), "NotMember")
	// The new members can rotate back.
	if err := update(f.rotation(t, newDigest, 3, f.members, 3, f.params, newKeys[0], newKeys[3]), f.members, 3); err != nil {
		t.Fatalf("rotating back: %v", err)
	}
	r3, _ := f.report(t, 3)
	if _, _, err := f.feed.call(nil, "submit", toABI(r3), f.sign(t, r3, 0, 1, 2)); err != nil {
		t.Fatalf("report after rotating back: %v", err)
	}
	// A member removed and not re-added (new member 0) is no member now.
	r4, _ := f.report(t, 4)
	s, _ := reputation.SignReport(newKeys[0], f.domain, r4)
	_, _, err = f.feed.call(nil, "submit", toABI(r4), [][]byte{s[:], f.sign(t, r4, 0)[0], f.sign(t, r4, 1)[0]})
	wantRevert(t, err, "NotMember")
}
