package main

import (
	"bytes"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
