package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestProofVerbsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if code, _, stderr := runCLI(t, "setup", "-unsafe-dev", "-profile", "test", "-out", keys); code != 0 {
		t.Fatalf("setup: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"test-v2.pk", "test-v2.vk"} {
		if _, err := os.Stat(filepath.Join(keys, f)); err != nil {
			t.Fatal(err)
		}
	}
	b1, b2 := filepath.Join(dir, "b1.json"), filepath.Join(dir, "b2.json")
	nonce := "0x" + strings.Repeat("ab", 32)
	if code, _, stderr := runCLI(t, "prove", "-profile", "test", "-nonce", nonce, "-node", "0x"+strings.Repeat("11", 20), "-keys", keys, "-out", b1); code != 0 {
		t.Fatalf("prove: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "prove", "-node", "0x"+strings.Repeat("22", 20), "-keys", keys, "-out", b2); code != 0 {
		t.Fatalf("prove (random nonce): exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "verify", "-keys", keys, b1, b2)
	if code != 0 || strings.Count(stdout, "ok ") != 2 {
		t.Fatalf("verify: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// The same proof claimed for another node fails, and only that bundle.
	var bundle proofBundle
	data, err := os.ReadFile(b1)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &bundle); err != nil {
		t.Fatal(err)
	}
	bundle.Node = "0x" + strings.Repeat("33", 20)
	forged, _ := json.Marshal(bundle)
	b3 := filepath.Join(dir, "b3.json")
	if err := os.WriteFile(b3, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "verify", "-vk", filepath.Join(keys, "test-v2.vk"), b1, b3, b2)
	if code != 1 || !strings.Contains(stdout, "FAIL "+b3) || strings.Count(stdout, "ok ") != 2 {
		t.Fatalf("verify with a forged bundle: exit %d, stdout %q", code, stdout)
	}

	// The same proof claimed under another sample seed fails: the seed
	// selects the cells the proof opens.
	reseeded := bundle
	if err := json.Unmarshal(data, &reseeded); err != nil {
		t.Fatal(err)
	}
	reseeded.Seed = "0x" + strings.Repeat("5a", 16)
	b4 := filepath.Join(dir, "b4.json")
	raw, _ := json.Marshal(reseeded)
	if err := os.WriteFile(b4, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "verify", "-keys", keys, b4)
	if code != 1 || !strings.Contains(stdout, "FAIL "+b4) {
		t.Fatalf("verify with another seed: exit %d, stdout %q", code, stdout)
	}

	// A bundle of the retired version 1 is refused, naming both versions.
	retired := reseeded
	retired.Profile = "test/v1"
	b5 := filepath.Join(dir, "b5.json")
	raw, _ = json.Marshal(retired)
	if err := os.WriteFile(b5, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "verify", "-keys", keys, b5)
	if code == 0 || !strings.Contains(stderr, "test/v1") || !strings.Contains(stderr, "test/v2") {
		t.Fatalf("verify of a v1 bundle: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr = runCLI(t, "solidity", "-keys", keys)
	if code != 0 || !strings.Contains(stdout, "pragma solidity") || !strings.Contains(stdout, "function verifyProof") {
		t.Fatalf("solidity: exit %d, stderr %q, stdout starts %.200q", code, stderr, stdout)
	}
}

func TestProofVerbsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"setup without -unsafe-dev", []string{"setup", "-out", t.TempDir()}, 2},
		{"setup unknown profile", []string{"setup", "-unsafe-dev", "-profile", "nope", "-out", t.TempDir()}, 1},
		{"prove without keys", []string{"prove", "-node", "0x" + strings.Repeat("11", 20)}, 2},
		{"prove bad node", []string{"prove", "-unsafe-dev", "-node", "0x1234"}, 2},
		{"prove dev and dir", []string{"prove", "-unsafe-dev", "-keys", "x", "-node", "0x" + strings.Repeat("11", 20)}, 2},
		{"verify no bundles", []string{"verify", "-unsafe-dev"}, 2},
		{"verify missing bundle", []string{"verify", "-unsafe-dev", "/nonexistent.json"}, 1},
		{"ceremony no step", []string{"ceremony"}, 2},
		{"ceremony unknown step", []string{"ceremony", "-profile", "test", "phase3"}, 2},
		{"ceremony seal without beacon", []string{"ceremony", "-profile", "test", "-out", "x", "-commons", "y", "seal", "c1"}, 2},
		{"ceremony seal without the phase-1 transcript", []string{"ceremony", "-profile", "test", "-out", "x", "-beacon", "00", "seal", "c1"}, 2},
		{"ceremony verify-transcript without a key", []string{"ceremony", "-profile", "test", "-phase1", "a", "-beacon1", "00", "-beacon", "00", "verify-transcript", "c1"}, 2},
		{"ceremony phase1-check without commons", []string{"ceremony", "-profile", "test", "-beacon", "00", "phase1-check", "c1"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, tc.args...); code != tc.want {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.want, stderr)
			}
		})
	}
}
