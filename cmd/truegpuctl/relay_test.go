package main

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

func TestParseWei(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "123": 123, "123wei": 123, "30gwei": 30_000_000_000, "1.5gwei": 1_500_000_000, " 2GWEI ": 2_000_000_000} {
		got, err := parseWei("max-fee-per-gas", in)
		if err != nil || got.Cmp(big.NewInt(want)) != 0 {
			t.Errorf("parseWei(%q) = %v, %v; want %d", in, got, err, want)
		}
	}
	if got, err := parseWei("x", ""); got != nil || err != nil {
		t.Errorf("empty: %v, %v", got, err)
	}
	for _, in := range []string{"-1", "1.5", "0.1wei", "ten", "1e9x"} {
		if _, err := parseWei("max-fee-per-gas", in); err == nil || !strings.Contains(err.Error(), "--max-fee-per-gas") {
			t.Errorf("parseWei(%q) = %v, want an error naming the flag", in, err)
		}
	}
}

func TestFeedRelayFlags(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x\n"), 0o600)
	const feed = "0x00000000000000000000000000000000000fEED0"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"feed", "relay"}, 2, "--feed-contract is required"},
		{[]string{"feed", "relay", "--feed-contract", "0x12"}, 2, "is not an address"},
		{[]string{"feed", "relay", "--feed-contract", feed}, 2, "--keystore and --password are required"},
		{[]string{"feed", "relay", "--feed-contract", feed, "--keystore", "k", "--password", pw, "--max-fee-per-gas", "lots"}, 2, "--max-fee-per-gas"},
		{[]string{"feed", "relay", "--feed-contract", feed, "--keystore", "k", "--password", pw, "--attempts", "0"}, 2, "at least 1"},
		{[]string{"feed", "relay", "extra"}, 2, "takes no arguments"},
		{[]string{"feed", "relay", "--feed-contract", feed, "--keystore", filepath.Join(dir, "missing.json"), "--password", pw}, 1, "read the keystore file"},
		{[]string{"feed", "relay", "--feed-contract", feed, "--keystore", pw, "--password", pw}, 1, "decrypt the keystore file"},
	} {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		if code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args[2:], code, errOut.String(), c.code, c.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"feed", "relay", "-h"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "--keystore") {
		t.Errorf("feed relay -h: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"help", "feed"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "feed relay") {
		t.Errorf("help feed does not mention feed relay: %q", out.String())
	}
}

func TestFeedConfigUpdateFlags(t *testing.T) {
	dir := t.TempDir()
	const feed = "0x00000000000000000000000000000000000fEED0"
	const a, b = "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2"
	p32 := "0x" + strings.Repeat("ab", 32)
	sig := "0x" + strings.Repeat("cd", 65)
	base := []string{"--feed-contract", feed, "--members", a + "," + b, "--threshold", "2", "--params-digest", p32}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sign-config-update"}, 2, "--feed-contract is required"},
		{[]string{"sign-config-update", "--feed-contract", feed}, 2, "--members is required"},
		{[]string{"sign-config-update", "--feed-contract", feed, "--members", a + ",0x12", "--threshold", "1", "--params-digest", p32}, 2, `"0x12" is not an address`},
		{[]string{"sign-config-update", "--feed-contract", feed, "--members", a + "," + a, "--threshold", "1", "--params-digest", p32}, 2, "listed twice"},
		{[]string{"sign-config-update", "--feed-contract", feed, "--members", a, "--threshold", "2", "--params-digest", p32}, 2, "threshold 2 of 1"},
		{[]string{"sign-config-update", "--feed-contract", feed, "--members", a, "--threshold", "1", "--params-digest", "0x12"}, 2, "64 hex digits"},
		{append([]string{"sign-config-update"}, base...), 2, "--signer-key is required"},
		{append([]string{"sign-config-update", "--signer-key", "k", "--version", "2"}, base...), 2, "both --previous-config and --version"},
		{append([]string{"sign-config-update", "--signer-key", "k", "--version", "1", "--previous-config", p32, "--chain-id", "1"}, base...), 2, "version 2 or above"},
		{append([]string{"sign-config-update", "--signer-key", "k", "--version", "2", "--previous-config", p32}, base...), 2, "--chain-id is required"},
		{append([]string{"sign-config-update", "--signer-key", "k"}, base...), 2, "--rpc is required"},
		{append([]string{"sign-config-update", "--signer-key", filepath.Join(dir, "missing"), "--version", "2", "--previous-config", p32, "--chain-id", "1"}, base...), 1, "load key file"},
		{append([]string{"update-config"}, base...), 2, "--rpc is required"},
		{append([]string{"update-config", "--rpc", "http://127.0.0.1:1"}, base...), 2, "--keystore and --password are required"},
		{append([]string{"update-config", "--rpc", "http://127.0.0.1:1", "--keystore", "k", "--password", "p"}, base...), 2, "--signature is required"},
		{append([]string{"update-config", "--rpc", "http://127.0.0.1:1", "--keystore", "k", "--password", "p", "--signature", sig + ",0x00"}, base...), 2, "--signature 2"},
		{append([]string{"update-config", "--rpc", "http://127.0.0.1:1", "--keystore", filepath.Join(dir, "missing"), "--password", "p", "--signature", sig}, base...), 1, "read the keystore file"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"feed"}, c.args...), &out, &errOut)
		if code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
}

// TestFeedSignConfigUpdateOffline: the printed signature recovers, over
// reputation.ConfigUpdateDigest of the flags, to the key file's address,
// and to another address for another version.
func TestFeedSignConfigUpdateOffline(t *testing.T) {
	dir := t.TempDir()
	key := ethcrypto.KeyFromSeed([]byte("member"))
	keyFile := filepath.Join(dir, "signer.key")
	if err := ethcrypto.SaveKeyFile(keyFile, key); err != nil {
		t.Fatal(err)
	}
	const feed = "0x00000000000000000000000000000000000fEED0"
	members := []ethcrypto.Address{ethcrypto.KeyFromSeed([]byte("x")).Address(), ethcrypto.KeyFromSeed([]byte("y")).Address()}
	prev, params := [32]byte{1}, [32]byte{2}
	var out, errOut bytes.Buffer
	code := run([]string{"feed", "sign-config-update", "--signer-key", keyFile, "--feed-contract", feed, "--chain-id", "31337",
		"--previous-config", hex.EncodeToString(prev[:]), "--version", "5", "--members", members[1].Hex() + "," + members[0].Hex(),
		"--threshold", "2", "--params-digest", hex.EncodeToString(params[:])}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(out.String()), "0x"))
	if err != nil || len(sig) != 65 {
		t.Fatalf("output %q is not a signature", out.String())
	}
	dom := reputation.NewDomain(31337, ethcrypto.Address(common.HexToAddress(feed)))
	next := reputation.ConfigDigest(members, 2, params)
	for version, want := range map[uint64]bool{5: true, 6: false} {
		a, err := ethcrypto.RecoverAddress(reputation.ConfigUpdateDigest(dom, prev, next, version), sig)
		if err != nil || (a == key.Address()) != want {
			t.Errorf("version %d: recovers to %s (%v), signer %s, want match %v", version, a, err, key.Address(), want)
		}
	}
}
