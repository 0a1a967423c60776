package ethcrypto

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"
)

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrInvalidAddress reports a string that is not a 0x-prefixed 40-digit hex
	// address, or whose mixed-case checksum (EIP-55) does not match.
	ErrInvalidAddress = errors.New("ethcrypto: invalid address")
	// ErrInvalidKey reports a private key that is not 32 bytes in [1, n-1].
	ErrInvalidKey = errors.New("ethcrypto: invalid private key")
	// ErrInvalidSignature reports a signature that is malformed (length,
	// recovery byte, r or s out of range, high s) or from which no public key
	// can be recovered.
	ErrInvalidSignature = errors.New("ethcrypto: invalid signature")
	// ErrKeyFileExists reports that SaveKeyFile refused to overwrite a file.
	ErrKeyFileExists = errors.New("ethcrypto: key file already exists")
	// ErrKeyFilePermissions reports a key file readable by group or others.
	ErrKeyFilePermissions = errors.New("ethcrypto: key file permissions too open")
)

// SignatureLen is the length of a recoverable signature: r (32) || s (32) || v (1).
const SignatureLen = 65

// Keccak256 returns the legacy Keccak-256 hash (as used by Ethereum, not
// FIPS-202 SHA3-256) of the concatenation of data.
func Keccak256(data ...[]byte) [32]byte {
	h := sha3.NewLegacyKeccak256()
	for _, d := range data {
		h.Write(d)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Address is a 20-byte Ethereum account address: the last 20 bytes of the
// Keccak-256 hash of the uncompressed public key (without its 0x04 prefix).
type Address [20]byte

// String returns the EIP-55 mixed-case checksummed hex form, with 0x prefix.
func (a Address) String() string {
	lower := hex.EncodeToString(a[:])
	h := Keccak256([]byte(lower))
	out := make([]byte, 2, 42)
	out[0], out[1] = '0', 'x'
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		nibble := h[i/2]
		if i%2 == 0 {
			nibble >>= 4
		}
		if c >= 'a' && nibble&0xf >= 8 {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

// Hex returns the lower-case 0x-prefixed hex form.
func (a Address) Hex() string { return "0x" + hex.EncodeToString(a[:]) }

// IsZero reports whether a is the zero address.
func (a Address) IsZero() bool { return a == Address{} }

// MarshalText implements encoding.TextMarshaler with the checksummed form.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseAddress.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// ParseAddress parses a 0x-prefixed 40-digit hex address. All-lower-case and
// all-upper-case digits are accepted as unchecksummed; a mixed-case string must
// carry a valid EIP-55 checksum, so a mistyped address is rejected.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 42 || (s[:2] != "0x" && s[:2] != "0X") {
		return a, fmt.Errorf("%w: %q: want 0x followed by 40 hex digits", ErrInvalidAddress, s)
	}
	body := s[2:]
	if _, err := hex.Decode(a[:], []byte(body)); err != nil {
		return Address{}, fmt.Errorf("%w: %q: %v", ErrInvalidAddress, s, err)
	}
	hasLower := strings.ContainsAny(body, "abcdef")
	hasUpper := strings.ContainsAny(body, "ABCDEF")
	if hasLower && hasUpper && a.String()[2:] != body {
		return Address{}, fmt.Errorf("%w: %q: EIP-55 checksum mismatch (expected %s); check for a typo",
			ErrInvalidAddress, s, a.String())
	}
	return a, nil
}

// MustParseAddress is ParseAddress for constants in tests and examples; it
// panics on error.
func MustParseAddress(s string) Address {
	a, err := ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// PrivateKey is a secp256k1 private key.
type PrivateKey struct {
	k *secp256k1.PrivateKey
}

// GenerateKey returns a new key from the operating system's random source.
func GenerateKey() (*PrivateKey, error) {
	k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ethcrypto: generate key: %w", err)
	}
	return &PrivateKey{k: k}, nil
}

// KeyFromBytes returns the key with the given 32-byte big-endian scalar, which
// must lie in [1, n-1].
func KeyFromBytes(b []byte) (*PrivateKey, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("%w: got %d bytes, want 32", ErrInvalidKey, len(b))
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow {
		return nil, fmt.Errorf("%w: scalar is not below the curve order", ErrInvalidKey)
	}
	if s.IsZero() {
		return nil, fmt.Errorf("%w: scalar is zero", ErrInvalidKey)
	}
	return &PrivateKey{k: secp256k1.NewPrivateKey(&s)}, nil
}

// KeyFromHex parses a 64-digit hex private key, with or without 0x prefix.
func KeyFromHex(s string) (*PrivateKey, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	if len(t) != 64 {
		return nil, fmt.Errorf("%w: want 64 hex digits, got %d", ErrInvalidKey, len(t))
	}
	b, err := hex.DecodeString(t)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return KeyFromBytes(b)
}

// KeyFromSeed derives a key deterministically from seed by hashing it with
// Keccak-256 (re-hashing with a counter in the negligible case that the result
// is not a valid scalar).
//
// It is meant for development clusters, tests and simulated fleets, where
// reproducible identities are useful. It is NOT for production: anyone who
// knows or guesses the seed holds the key.
func KeyFromSeed(seed []byte) *PrivateKey {
	for ctr := uint64(0); ; ctr++ {
		h := Keccak256([]byte("truegpu/ethcrypto/KeyFromSeed/v1"), seed, []byte(strconv.FormatUint(ctr, 10)))
		if k, err := KeyFromBytes(h[:]); err == nil {
			return k
		}
	}
}

// Bytes returns the 32-byte big-endian private scalar.
func (k *PrivateKey) Bytes() []byte {
	b := k.k.Key.Bytes()
	return b[:]
}

// Hex returns the private key as 0x-prefixed lower-case hex. Treat the result
// as a secret.
func (k *PrivateKey) Hex() string { return "0x" + hex.EncodeToString(k.Bytes()) }

// PublicKey returns the 65-byte uncompressed public key (0x04 || X || Y).
func (k *PrivateKey) PublicKey() []byte { return k.k.PubKey().SerializeUncompressed() }

// Address returns the Ethereum address of the key.
func (k *PrivateKey) Address() Address { return PubkeyToAddress(k.PublicKey()) }

// PubkeyToAddress returns the address of a 65-byte uncompressed public key
// (0x04 || X || Y). It does not validate that the point is on the curve.
func PubkeyToAddress(uncompressed []byte) Address {
	var a Address
	if len(uncompressed) != 65 {
		return a
	}
	h := Keccak256(uncompressed[1:])
	copy(a[:], h[12:])
	return a
}

// SignHash signs a 32-byte hash and returns r || s || v with v in {27, 28},
// the layout of eth_sign and Solidity's ecrecover. The signature is
// deterministic (RFC 6979) and has a low s value (EIP-2).
func (k *PrivateKey) SignHash(hash [32]byte) ([65]byte, error) {
	var out [65]byte
	compact := ecdsa.SignCompact(k.k, hash[:], false)
	recid := compact[0] - 27
	if recid > 1 {
		// The R point's x coordinate exceeded the group order (probability
		// about 2^-127); Ethereum's ecrecover cannot express this case.
		return out, fmt.Errorf("ethcrypto: sign: recovery id %d is not expressible as v=27/28", recid)
	}
	copy(out[:64], compact[1:])
	out[64] = 27 + recid
	return out, nil
}

// RecoverAddress returns the address whose key produced sig over hash.
//
// It is strict: sig must be 65 bytes r || s || v with v in {27, 28} (the
// recovery ids 0 and 1 are refused, as Solidity's ecrecover refuses them),
// r and s in [1, n-1] and s in the lower half of the order (EIP-2), so every
// signature has exactly one accepted encoding.
func RecoverAddress(hash [32]byte, sig []byte) (Address, error) {
	if len(sig) != SignatureLen {
		return Address{}, fmt.Errorf("%w: length %d, want %d (r||s||v)", ErrInvalidSignature, len(sig), SignatureLen)
	}
	v := sig[64]
	switch v {
	case 27, 28:
		v -= 27
	default:
		return Address{}, fmt.Errorf("%w: recovery byte v=%d, want 27 or 28", ErrInvalidSignature, sig[64])
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsZero() {
		return Address{}, fmt.Errorf("%w: s out of range", ErrInvalidSignature)
	}
	if s.IsOverHalfOrder() {
		return Address{}, fmt.Errorf("%w: s is in the upper half of the curve order (malleable, EIP-2)", ErrInvalidSignature)
	}
	pub, err := recoverPubkey(hash, sig[:64], v)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	return PubkeyToAddress(pub), nil
}

// recoverPubkeyGo recovers the uncompressed public key of the validated
// signature r||s (rs) with recovery id v (0 or 1) in pure Go.
func recoverPubkeyGo(hash [32]byte, rs []byte, v byte) ([]byte, error) {
	var compact [65]byte
	compact[0] = 27 + v
	copy(compact[1:], rs)
	pub, _, err := ecdsa.RecoverCompact(compact[:], hash[:])
	if err != nil {
		return nil, err
	}
	return pub.SerializeUncompressed(), nil
}

// PersonalHash returns the EIP-191 version 0x45 hash of msg:
// keccak256("\x19Ethereum Signed Message:\n" + len(msg) + msg), as produced by
// personal_sign and OpenZeppelin's MessageHashUtils.toEthSignedMessageHash.
func PersonalHash(msg []byte) [32]byte {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(msg))
	return Keccak256([]byte(prefix), msg)
}

// SaveKeyFile writes k as hex to path with mode 0600. It refuses to overwrite
// an existing file, so a key is never lost by accident.
func SaveKeyFile(path string, k *PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s: move or delete it first if it should be replaced", ErrKeyFileExists, path)
		}
		return fmt.Errorf("ethcrypto: save key file: %w", err)
	}
	if _, err := f.WriteString(k.Hex()[2:] + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("ethcrypto: save key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ethcrypto: save key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ethcrypto: save key file %s: %w", path, err)
	}
	return nil
}

// LoadKeyFile reads a hex private key written by SaveKeyFile. It refuses a
// file that is readable or writable by group or others.
func LoadKeyFile(path string) (*PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ethcrypto: load key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ethcrypto: load key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("ethcrypto: load key file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o; run `chmod 600 %s`", ErrKeyFilePermissions, path, perm, path)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, 1024)); err != nil {
		return nil, fmt.Errorf("ethcrypto: load key file %s: %w", path, err)
	}
	k, err := KeyFromHex(buf.String())
	if err != nil {
		return nil, fmt.Errorf("ethcrypto: load key file %s: %w", path, err)
	}
	return k, nil
}
