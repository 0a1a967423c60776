package ethcrypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const (
	vectorKey  = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
	vectorAddr = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	if len(s) >= 2 && s[:2] == "0x" {
		s = s[2:]
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeccak256Vectors(t *testing.T) {
	tests := []struct {
		in   [][]byte
		want string
	}{
		{nil, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
		{[][]byte{[]byte("")}, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
		{[][]byte{[]byte("abc")}, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
		{[][]byte{[]byte("a"), []byte("bc")}, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
	}
	for _, tc := range tests {
		got := Keccak256(tc.in...)
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("Keccak256(%q) = %x, want %s", tc.in, got, tc.want)
		}
	}
}

func TestKnownKeyAddress(t *testing.T) {
	k, err := KeyFromHex(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Address().String(); got != vectorAddr {
		t.Fatalf("Address() = %s, want %s", got, vectorAddr)
	}
	if k.Hex() != vectorKey {
		t.Fatalf("Hex() = %s, want %s", k.Hex(), vectorKey)
	}
	if pk := k.PublicKey(); len(pk) != 65 || pk[0] != 4 {
		t.Fatalf("PublicKey() = %x, want 65-byte uncompressed", pk)
	}
}

func TestEIP55(t *testing.T) {
	// Test vectors from EIP-55.
	for _, s := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		a, err := ParseAddress(s)
		if err != nil {
			t.Errorf("ParseAddress(%s): %v", s, err)
			continue
		}
		if a.String() != s {
			t.Errorf("String() = %s, want %s", a.String(), s)
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", false},
		{"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", false},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", false},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", true}, // bad checksum
		{"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", true},   // no prefix
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", true},  // short
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd", true},
		{"0xzzaeb6053f3e94c9b9a09f33669435e7ef1beaed", true},
		{"", true},
	}
	for _, tc := range tests {
		_, err := ParseAddress(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseAddress(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("ParseAddress(%q) err = %v, want ErrInvalidAddress", tc.in, err)
		}
	}
}

func TestAddressText(t *testing.T) {
	a := MustParseAddress(vectorAddr)
	b, err := a.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back Address
	if err := back.UnmarshalText(b); err != nil || back != a {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	if a.Hex() != "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23" {
		t.Fatalf("Hex() = %s", a.Hex())
	}
}

// TestPersonalSignVector checks the web3.js documentation example for
// web3.eth.accounts.sign("Some data", vectorKey).
func TestPersonalSignVector(t *testing.T) {
	k, err := KeyFromHex(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	h := PersonalHash([]byte("Some data"))
	if got, want := hex.EncodeToString(h[:]), "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"; got != want {
		t.Fatalf("PersonalHash = %s, want %s", got, want)
	}
	sig, err := k.SignHash(h)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c")
	if !bytes.Equal(sig[:], want) {
		t.Fatalf("SignHash = %x, want %x", sig, want)
	}
	addr, err := RecoverAddress(h, sig[:])
	if err != nil || addr.String() != vectorAddr {
		t.Fatalf("RecoverAddress = %s, %v; want %s", addr, err, vectorAddr)
	}
}

func TestSignRecoverRoundTrip(t *testing.T) {
	for i := 0; i < 16; i++ {
		k := KeyFromSeed([]byte{byte(i)})
		h := Keccak256([]byte("message"), []byte{byte(i)})
		sig, err := k.SignHash(h)
		if err != nil {
			t.Fatal(err)
		}
		if sig[64] != 27 && sig[64] != 28 {
			t.Fatalf("v = %d", sig[64])
		}
		got, err := RecoverAddress(h, sig[:])
		if err != nil || got != k.Address() {
			t.Fatalf("RecoverAddress = %s, %v; want %s", got, err, k.Address())
		}
		// v as 0/1 is a second encoding of the same signature: refused.
		alt := sig
		alt[64] -= 27
		if _, err := RecoverAddress(h, alt[:]); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("RecoverAddress(v=%d) err = %v, want ErrInvalidSignature", alt[64], err)
		}
		// A different hash recovers a different address.
		h2 := Keccak256([]byte("other"))
		if got, err := RecoverAddress(h2, sig[:]); err == nil && got == k.Address() {
			t.Fatal("signature verified for a different hash")
		}
	}
}

// curveOrder is n, the order of the secp256k1 group.
var curveOrder = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
}

// negateS returns n - s for a 32-byte big-endian s.
func negateS(s []byte) []byte {
	out := make([]byte, 32)
	var borrow int
	for i := 31; i >= 0; i-- {
		d := int(curveOrder[i]) - int(s[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		out[i] = byte(d)
	}
	return out
}

func TestRecoverAddressRejects(t *testing.T) {
	k := KeyFromSeed([]byte("reject"))
	h := Keccak256([]byte("x"))
	sig, err := k.SignHash(h)
	if err != nil {
		t.Fatal(err)
	}
	highS := sig
	copy(highS[32:64], negateS(sig[32:64]))
	highS[64] ^= 1 // flipping s flips the parity of the recovery id
	zeroR := sig
	copy(zeroR[:32], make([]byte, 32))
	bigS := sig
	copy(bigS[32:64], curveOrder[:])

	tests := []struct {
		name string
		sig  []byte
	}{
		{"empty", nil},
		{"short", sig[:64]},
		{"long", append(sig[:], 0)},
		{"v=2", append(append([]byte{}, sig[:64]...), 2)},
		{"v=29", append(append([]byte{}, sig[:64]...), 29)},
		{"high s", highS[:]},
		{"zero r", zeroR[:]},
		{"s = n", bigS[:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RecoverAddress(h, tc.sig)
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("err = %v, want ErrInvalidSignature", err)
			}
		})
	}
}

func TestKeyFromHexRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"0x00",
		"0x0000000000000000000000000000000000000000000000000000000000000000",
		"0x" + hex.EncodeToString(curveOrder[:]),
		"0xzz0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
	} {
		if _, err := KeyFromHex(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("KeyFromHex(%q) err = %v, want ErrInvalidKey", s, err)
		}
	}
}

func TestKeyFromSeedDeterministic(t *testing.T) {
	a, b := KeyFromSeed([]byte("node-1")), KeyFromSeed([]byte("node-1"))
	c := KeyFromSeed([]byte("node-2"))
	if a.Address() != b.Address() {
		t.Fatal("same seed gave different keys")
	}
	if a.Address() == c.Address() {
		t.Fatal("different seeds gave the same key")
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if a.Address() == b.Address() {
		t.Fatal("two generated keys are equal")
	}
	back, err := KeyFromHex(a.Hex())
	if err != nil || back.Address() != a.Address() {
		t.Fatalf("hex round trip: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	k := KeyFromSeed([]byte("file"))
	if err := SaveKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %#o, want 0600", st.Mode().Perm())
	}
	if err := SaveKeyFile(path, KeyFromSeed([]byte("other"))); !errors.Is(err, ErrKeyFileExists) {
		t.Fatalf("overwrite err = %v, want ErrKeyFileExists", err)
	}
	got, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Address() != k.Address() {
		t.Fatal("loaded key differs")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); !errors.Is(err, ErrKeyFilePermissions) {
		t.Fatalf("LoadKeyFile(0644) err = %v, want ErrKeyFilePermissions", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKeyFile(missing) err = %v, want not-exist", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(bad); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("LoadKeyFile(bad) err = %v, want ErrInvalidKey", err)
	}
}

func FuzzRecoverAddress(f *testing.F) {
	k := KeyFromSeed([]byte("fuzz"))
	h := Keccak256([]byte("fuzz"))
	sig, _ := k.SignHash(h)
	f.Add(h[:], sig[:])
	f.Add(h[:], []byte{})
	f.Add([]byte{}, make([]byte, 65))
	f.Fuzz(func(t *testing.T, hash, sig []byte) {
		var h [32]byte
		copy(h[:], hash)
		a, err := RecoverAddress(h, sig)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if a.IsZero() {
			t.Fatal("recovered zero address without error")
		}
		// The pure-Go recovery agrees with the one in use.
		if pub, err := recoverPubkeyGo(h, sig[:64], sig[64]%27); err != nil || PubkeyToAddress(pub) != a {
			t.Fatalf("pure-Go recovery disagrees: %v", err)
		}
		// Only v = 27/28 is accepted: one encoding per signature.
		if sig[64] != 27 && sig[64] != 28 {
			t.Fatalf("accepted v = %d", sig[64])
		}
		// A recovered signature must be canonical: the same bytes recover
		// again to the same address.
		b, err := RecoverAddress(h, sig)
		if err != nil || a != b {
			t.Fatalf("non-deterministic recovery: %v %v %v", a, b, err)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	f.Add(vectorAddr)
	f.Add("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
	f.Add("0x")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		b, err := ParseAddress(a.String())
		if err != nil || a != b {
			t.Fatalf("checksummed form does not round-trip: %s: %v", a, err)
		}
	})
}

func BenchmarkSignHash(b *testing.B) {
	k := KeyFromSeed([]byte("bench"))
	h := Keccak256([]byte("bench"))
	for b.Loop() {
		if _, err := k.SignHash(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecoverAddress(b *testing.B) {
	k := KeyFromSeed([]byte("bench"))
	h := Keccak256([]byte("bench"))
	sig, _ := k.SignHash(h)
	for b.Loop() {
		if _, err := RecoverAddress(h, sig[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRecoverBackendsAgree compares the recovery in use (libsecp256k1 with
// cgo) with the pure-Go one on valid signatures and on signatures with r
// replaced by values that are not x coordinates, are zero or overflow.
func TestRecoverBackendsAgree(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	rnd := func() (b [32]byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	mutations := []func(rs []byte){
		func([]byte) {},
		func(rs []byte) { r := rnd(); copy(rs[:32], r[:]) },
		func(rs []byte) { clear(rs[:32]) },
		func(rs []byte) {
			for i := range rs[:32] {
				rs[i] = 0xff
			}
		},
		func(rs []byte) { rs[rng.IntN(64)] ^= 1 << rng.IntN(8) },
	}
	agreeOK, agreeErr := 0, 0
	for i := range 400 {
		k := KeyFromSeed([]byte(fmt.Sprint("agree ", i)))
		h := rnd()
		sig, err := k.SignHash(h)
		if err != nil {
			t.Fatal(err)
		}
		rs := slices.Clone(sig[:64])
		mutations[i%len(mutations)](rs)
		v := sig[64] % 27
		a, errA := recoverPubkey(h, rs, v)
		b, errB := recoverPubkeyGo(h, rs, v)
		switch {
		case (errA == nil) != (errB == nil):
			t.Fatalf("signature %d: backends disagree on validity: %v / %v", i, errA, errB)
		case errA == nil && !bytes.Equal(a, b):
			t.Fatalf("signature %d: backends recover different keys", i)
		case errA == nil:
			agreeOK++
		default:
			agreeErr++
		}
		if i%len(mutations) == 0 && (errA != nil || PubkeyToAddress(a) != k.Address()) {
			t.Fatalf("signature %d: valid signature did not recover its signer: %v", i, errA)
		}
	}
	if agreeOK == 0 || agreeErr == 0 {
		t.Fatalf("cases: %d recovered, %d failed; want both kinds", agreeOK, agreeErr)
	}
}
