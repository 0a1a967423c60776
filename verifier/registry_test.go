package verifier_test

import (
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/verifier"
)

func TestRegistry(t *testing.T) {
	f := testFixture(t)
	var r verifier.Registry
	id := verifier.KeyID{Profile: "test", Version: 1}
	if _, err := r.Lookup(id); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Fatalf("Lookup(empty) = %v, want ErrUnknownKey", err)
	}
	if err := r.Register(id, f.vk); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(id, f.vk); err != nil {
		t.Fatalf("re-registering the same key: %v", err)
	}
	got, err := r.Lookup(id)
	if err != nil || !got.Equal(f.vk) {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	other := *f.vk
	other.Alpha.Add(&other.Alpha, &other.Alpha)
	if err := r.Register(id, &other); !errors.Is(err, verifier.ErrKeyConflict) {
		t.Fatalf("Register(different key, same id) = %v, want ErrKeyConflict", err)
	}
	if err := r.Register(verifier.KeyID{Profile: "test", Version: 2}, f.vk); !errors.Is(err, verifier.ErrKeyConflict) {
		t.Fatalf("Register(same digest, other id) = %v, want ErrKeyConflict", err)
	}
	vk, gotID, err := r.LookupDigest(f.vk.Digest)
	if err != nil || gotID != id || !vk.Equal(f.vk) {
		t.Fatalf("LookupDigest = %v, %v, %v", vk, gotID, err)
	}
	if _, _, err := r.LookupDigest([32]byte{1}); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Fatalf("LookupDigest(unknown) = %v, want ErrUnknownKey", err)
	}
	if ids := r.IDs(); !slices.Equal(ids, []verifier.KeyID{id}) {
		t.Fatalf("IDs = %v", ids)
	}
	if id.String() != "test/v1" {
		t.Fatalf("KeyID.String = %q", id.String())
	}
}

func TestExportSolidity(t *testing.T) {
	f := testFixture(t)
	var sb strings.Builder
	if err := verifier.ExportSolidity(f.vk, &sb); err != nil {
		t.Fatal(err)
	}
	src := sb.String()
	g, err := f.vk.Gnark()
	if err != nil {
		t.Fatal(err)
	}
	// The contract embeds this key's constants.
	alphaX := g.G1.Alpha.X.String()
	for _, want := range []string{"pragma solidity", "function verifyProof", "uint256[6] calldata input", alphaX} {
		if !strings.Contains(src, want) {
			t.Errorf("Solidity source lacks %q", want)
		}
	}
	words := f.proofs[0].SolidityProof()
	if words[0].Cmp(f.proofs[0].A.X.BigInt(new(big.Int))) != 0 {
		t.Fatalf("SolidityProof[0] = %v, want A.x", words[0])
	}
	if err := verifier.ExportSolidity(nil, &sb); err == nil {
		t.Fatal("ExportSolidity(nil) succeeded")
	}
}
