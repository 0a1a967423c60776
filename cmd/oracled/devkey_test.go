package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/prover"
)

// TestDevVerifyingKeyRefused: the verifying key `truegpuctl setup
// -unsafe-dev` writes is refused by -verifying-key unless -unsafe-dev-keys
// is set; another key is taken as it is.
func TestDevVerifyingKeyRefused(t *testing.T) {
	clearMemberEnv(t)
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, vk, err := prover.UnsafeDevKeys(p, filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	devFile := filepath.Join(dir, "dev.vk")
	if err := os.WriteFile(devFile, vk.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "signer.key")
	if err := ethcrypto.SaveKeyFile(keyFile, ethcrypto.KeyFromSeed([]byte("m1"))); err != nil {
		t.Fatal(err)
	}
	err = runMember(context.Background(), []string{"-node-id", "m1", "-data-dir", filepath.Join(dir, "data"), "-signer-key", keyFile,
		"-insecure-no-tls", "-profile", "test", "-verifying-key", devFile})
	if err == nil || !strings.Contains(err.Error(), "UNSAFE dev setup") || !strings.Contains(err.Error(), "-unsafe-dev-keys") {
		t.Fatalf("member with a dev verifying key: %v, want a refusal naming -unsafe-dev-keys", err)
	}
	var warn bytes.Buffer
	if _, err := loadVerifyingKey(devFile, true, &warn); err != nil || !strings.Contains(warn.String(), "UNSAFE") {
		t.Fatalf("dev key with -unsafe-dev-keys: %v, warning %q", err, warn.String())
	}
	other := *vk
	other.Alpha.Double(&vk.Alpha)
	other.Gamma.Double(&vk.Gamma)
	other.Delta.Double(&vk.Delta)
	otherFile := filepath.Join(dir, "other.vk")
	if err := os.WriteFile(otherFile, other.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	warn.Reset()
	if _, err := loadVerifyingKey(otherFile, false, &warn); err != nil || warn.Len() != 0 {
		t.Fatalf("another key: %v, warning %q", err, warn.String())
	}
}
