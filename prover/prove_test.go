package prover

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/truegpu/truegpu/verifier"
)

// testKeys returns the dev keys of the test profile, set up once per test
// binary.
func testKeys(t testing.TB) (*ProvingKey, *verifier.VerifyingKey) {
	t.Helper()
	pk, vk, err := UnsafeDevKeys(mustProfile(t, "test"), "")
	if err != nil {
		t.Fatal(err)
	}
	return pk, vk
}

func TestProveVerifyEndToEnd(t *testing.T) {
	p := mustProfile(t, "test")
	pk, vk := testKeys(t)
	nonce, node := testNonce(21), testAddress(22)
	seed := testSeed(25)
	proofBytes, root, err := Prove(pk, p, nonce, node, seed, Compute(p, nonce))
	if err != nil {
		t.Fatal(err)
	}
	if len(proofBytes) != verifier.ProofSize {
		t.Fatalf("proof is %d bytes, want %d", len(proofBytes), verifier.ProofSize)
	}
	proof, err := verifier.DecodeProof(proofBytes)
	if err != nil {
		t.Fatal(err)
	}
	pubFor := func(n Nonce, a Address, r [32]byte, s SampleSeed) verifier.PublicInputs {
		pub, err := p.PublicInputs(n, a, r, s)
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	otherRoot := root
	otherRoot[31] ^= 1
	tests := []struct {
		name string
		pub  verifier.PublicInputs
		want error
	}{
		{"same challenge", pubFor(nonce, node, root, seed), nil},
		{"replay for another nonce", pubFor(testNonce(23), node, root, seed), verifier.ErrInvalidProof},
		{"another node", pubFor(nonce, testAddress(24), root, seed), verifier.ErrInvalidProof},
		{"another root", pubFor(nonce, node, otherRoot, seed), verifier.ErrInvalidProof},
		{"another sample seed", pubFor(nonce, node, root, testSeed(26)), verifier.ErrInvalidProof},
		{"zero sample seed", pubFor(nonce, node, root, SampleSeed{}), verifier.ErrInvalidProof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifier.Verify(vk, proof, tc.pub)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// The proof under another profile's inputs is refused before pairing.
	demoPub, err := mustProfile(t, "demo").PublicInputs(nonce, node, root, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Verify(vk, proof, demoPub); !errors.Is(err, verifier.ErrDigestMismatch) {
		t.Fatalf("Verify(demo inputs) = %v, want ErrDigestMismatch", err)
	}
}

func TestProveRejectsWrongResults(t *testing.T) {
	p := mustProfile(t, "test")
	pk, _ := testKeys(t)
	nonce, node := testNonce(31), testAddress(32)
	cells := Compute(p, nonce)
	for i := range cells {
		cells[i] ^= 1 << 20
	}
	if _, _, err := Prove(pk, p, nonce, node, testSeed(33), cells); !errors.Is(err, ErrWrongResult) {
		t.Fatalf("Prove(wrong cells) = %v, want ErrWrongResult", err)
	}
	if _, _, err := Prove(pk, mustProfile(t, "demo"), nonce, node, testSeed(33), cells); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("Prove(demo profile, test key) = %v, want ErrKeyMismatch", err)
	}
	if _, _, err := Prove(pk, p, nonce, node, testSeed(33), cells[:10]); !errors.Is(err, ErrShape) {
		t.Fatalf("Prove(short cells) = %v, want ErrShape", err)
	}
}

func TestProvingKeyRoundTrip(t *testing.T) {
	p := mustProfile(t, "test")
	pk, vk := testKeys(t)
	var buf bytes.Buffer
	if _, err := pk.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	encoded := buf.Bytes()
	if _, err := ReadProvingKey(bytes.NewReader(encoded), mustProfile(t, "demo")); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("ReadProvingKey(demo) = %v, want ErrKeyMismatch", err)
	}
	if _, err := ReadProvingKey(bytes.NewReader(encoded[:40]), p); !errors.Is(err, ErrKeyEncoding) {
		t.Fatalf("ReadProvingKey(truncated) = %v, want ErrKeyEncoding", err)
	}
	pk2, err := ReadProvingKey(bytes.NewReader(encoded), p)
	if err != nil {
		t.Fatal(err)
	}
	if !pk2.VerifyingKey().Equal(vk) {
		t.Fatal("verifying key changed in the round trip")
	}
	nonce, node := testNonce(41), testAddress(42)
	proofBytes, root, err := Prove(pk2, p, nonce, node, testSeed(43), Compute(p, nonce))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := verifier.DecodeProof(proofBytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := p.PublicInputs(nonce, node, root, testSeed(43))
	if err := verifier.Verify(vk, proof, pub); err != nil {
		t.Fatalf("proof from the reloaded key: %v", err)
	}
}

// tinyProfile is the smallest valid profile; its setup and ceremony run in
// seconds.
var tinyProfile = &Profile{Name: "tiny", Version: 1, M: 2, N: 4, K: 8, Q: 1}

func TestUnsafeDevSetupIsDeterministic(t *testing.T) {
	_, vk1, err := unsafeDevSetup(tinyProfile)
	if err != nil {
		t.Fatal(err)
	}
	_, vk2, err := unsafeDevSetup(tinyProfile)
	if err != nil {
		t.Fatal(err)
	}
	if !vk1.Equal(vk2) {
		t.Fatal("two dev setups of one profile differ")
	}
	_, vkTest := testKeys(t)
	if vk1.Equal(vkTest) {
		t.Fatal("dev setups of two profiles are equal")
	}
}

// TestDevKeyCache: UnsafeDevKeys sets a profile up once per process and
// serves the same keys after, storing them in the directory it is given.
func TestDevKeyCache(t *testing.T) {
	dir := t.TempDir()
	pk1, vk1, err := UnsafeDevKeys(tinyProfile, dir)
	if err != nil {
		t.Fatal(err)
	}
	devKeyFile(t, dir)
	pk2, vk2, err := UnsafeDevKeys(tinyProfile, "")
	if err != nil {
		t.Fatal(err)
	}
	if pk2 != pk1 || vk2 != vk1 {
		t.Fatal("a second call set the profile up again")
	}
	// Memory serves later calls; a directory that lacks the keys still
	// receives them.
	other := t.TempDir()
	if _, _, err := UnsafeDevKeys(tinyProfile, other); err != nil {
		t.Fatal(err)
	}
	devKeyFile(t, other)
}

// devKeyFile returns the path of tinyProfile's key file in dir, failing
// unless it is the only file there.
func devKeyFile(t *testing.T, dir string) string {
	t.Helper()
	want := devKeyName(tinyProfile) + ".pk"
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != want {
		t.Fatalf("cache dir holds %v (%v), want only %s", entries, err, want)
	}
	return filepath.Join(dir, want)
}

// TestDevKeyCacheDisk: the on-disk layer reads stored keys back and replaces
// a corrupt entry.
func TestDevKeyCacheDisk(t *testing.T) {
	dir := t.TempDir()
	pk1, vk1, err := loadOrSetupDevKeys(tinyProfile, dir)
	if err != nil {
		t.Fatal(err)
	}
	path := devKeyFile(t, dir)
	pk2, vk2, err := loadOrSetupDevKeys(tinyProfile, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !vk1.Equal(vk2) || pk2.Constraints() != pk1.Constraints() {
		t.Fatal("cached keys differ from the generated ones")
	}
	// A corrupt entry is regenerated.
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, vk3, err := loadOrSetupDevKeys(tinyProfile, dir)
	if err != nil || !vk3.Equal(vk1) {
		t.Fatalf("after corrupting the cache: %v, equal=%v", err, vk3 != nil && vk3.Equal(vk1))
	}
	if _, err := ReadProvingKey(mustOpen(t, path), tinyProfile); err != nil {
		t.Fatalf("corrupt entry not replaced: %v", err)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestRecognisesDevKey: the dev setup's verifying key is recognised, a key
// with another trapdoor is not.
func TestRecognisesDevKey(t *testing.T) {
	p := mustProfile(t, "test")
	_, vk := testKeys(t)
	id, ok := IsUnsafeDevKey(vk)
	if !ok || id != p.ID() {
		t.Fatalf("IsUnsafeDevKey(dev key of %s) = %q, %v", p.ID(), id, ok)
	}
	// The same key with every trapdoor point replaced is a key the dev
	// setup never made.
	other := *vk
	other.Alpha.Double(&vk.Alpha)
	other.Gamma.Double(&vk.Gamma)
	other.Delta.Double(&vk.Delta)
	if id, ok := IsUnsafeDevKey(&other); ok {
		t.Fatalf("a key with other trapdoor points was recognised as the dev key of %s", id)
	}
	// One dev point is enough: a phase 2 over the dev phase 1 keeps α.
	onlyAlpha := other
	onlyAlpha.Alpha = vk.Alpha
	if _, ok := IsUnsafeDevKey(&onlyAlpha); !ok {
		t.Fatal("a key keeping the dev α was not recognised")
	}
	if _, ok := IsUnsafeDevKey(nil); ok {
		t.Fatal("nil key recognised")
	}
}
