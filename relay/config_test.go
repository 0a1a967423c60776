package relay

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// TestUpdateConfig: an update signed by k of the feed's current members at
// its next version is sent (members sorted); too few signers, an outsider,
// a replayed version, another target or an invalid new set are refused
// before any transaction.
func TestUpdateConfig(t *testing.T) {
	var keys []*ethcrypto.PrivateKey
	var cur []ethcrypto.Address
	for i := range 3 {
		k := ethcrypto.KeyFromSeed([]byte(fmt.Sprint("member-", i)))
		keys = append(keys, k)
		cur = append(cur, k.Address())
	}
	params := [32]byte{9}
	ch := &fakeChain{cfgDigest: reputation.ConfigDigest(cur, 2, params), cfgVersion: 1, threshold: 2}
	for _, m := range reputation.SortedMembers(cur) {
		ch.members = append(ch.members, common.Address(m))
	}
	got, err := ReadFeedConfig(context.Background(), ch, feedAddr)
	if err != nil || got.Digest != ch.cfgDigest || got.Version != 1 || got.Threshold != 2 || len(got.Members) != 3 || got.Paused {
		t.Fatalf("ReadFeedConfig = %+v, %v", got, err)
	}

	newKey := ethcrypto.KeyFromSeed([]byte("new-member"))
	next := []common.Address{common.Address(newKey.Address()), common.Address(keys[2].Address()), common.Address(keys[1].Address())}
	dom := reputation.NewDomain(testID.Uint64(), ethcrypto.Address(feedAddr))
	u := ConfigUpdate{Members: next, Threshold: 2, ParamsDigest: params}
	sign := func(version uint64, target [32]byte, signers ...*ethcrypto.PrivateKey) [][]byte {
		var sigs [][]byte
		for _, k := range signers {
			s, err := reputation.SignConfigUpdate(k, dom, ch.cfgDigest, target, version)
			if err != nil {
				t.Fatal(err)
			}
			sigs = append(sigs, s[:])
		}
		return sigs
	}
	tx, _ := crypto.GenerateKey()
	for name, c := range map[string]struct {
		sigs [][]byte
		u    ConfigUpdate
		want error
	}{
		"one of three":   {sign(2, u.NewDigest(), keys[0]), u, reputation.ErrTooFewSignatures},
		"outsider":       {sign(2, u.NewDigest(), keys[0], newKey), u, reputation.ErrNotMember},
		"replay version": {sign(1, u.NewDigest(), keys[0], keys[1]), u, reputation.ErrNotMember},
		"another target": {sign(2, ch.cfgDigest, keys[0], keys[1]), u, reputation.ErrNotMember},
		"threshold zero": {sign(2, u.NewDigest(), keys[0], keys[1]), ConfigUpdate{Members: next, ParamsDigest: params}, reputation.ErrInvalidConfig},
	} {
		c.u.Signatures = c.sigs
		if _, err := UpdateConfig(context.Background(), ch, feedAddr, tx, c.u, TxOptions{}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if len(ch.sent) != 0 {
		t.Fatalf("%d transactions sent for refused updates", len(ch.sent))
	}

	u.Signatures = sign(2, u.NewDigest(), keys[2], keys[0])
	rc, err := UpdateConfig(context.Background(), ch, feedAddr, tx, u, TxOptions{})
	if err != nil || rc == nil || len(ch.updates) != 1 {
		t.Fatalf("update by 2 of 3: %v, %d updates", err, len(ch.updates))
	}
	args := ch.updates[0]
	members := args[0].([]common.Address)
	for i := 1; i < len(members); i++ {
		if strings.ToLower(members[i-1].Hex()) >= strings.ToLower(members[i].Hex()) {
			t.Fatalf("members not sent ascending: %v", members)
		}
	}
	if args[1].(*big.Int).Int64() != 2 || args[2].([32]byte) != params || len(args[3].([][]byte)) != 2 {
		t.Fatalf("updateConfig arguments %v", args)
	}
}
