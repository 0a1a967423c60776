package attest

import (
	"errors"
	"fmt"
	"io/fs"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// NodeKey is a node's secp256k1 identity key. Its address (as on an EVM
// chain) is the node's identity at the oracle. A NodeKey is safe for
// concurrent use.
type NodeKey struct {
	k *ethcrypto.PrivateKey
}

// GenerateNodeKey returns a fresh random key.
func GenerateNodeKey() (*NodeKey, error) {
	k, err := ethcrypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("attest: generate node key: %w", err)
	}
	return &NodeKey{k: k}, nil
}

// NodeKeyFromSeed derives a key deterministically from seed. It is for
// tests and simulated fleets only: anyone who knows the seed has the key.
func NodeKeyFromSeed(seed []byte) *NodeKey {
	return &NodeKey{k: ethcrypto.KeyFromSeed(seed)}
}

// LoadNodeKey reads a key file written by Save. It refuses a file that is
// readable or writable by group or others (ethcrypto.ErrKeyFilePermissions).
func LoadNodeKey(path string) (*NodeKey, error) {
	k, err := ethcrypto.LoadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("attest: node key: %w", err)
	}
	return &NodeKey{k: k}, nil
}

// LoadOrCreateNodeKey loads the key at path, or generates one and saves it
// there (mode 0600) when the file does not exist. created reports which.
func LoadOrCreateNodeKey(path string) (k *NodeKey, created bool, err error) {
	k, err = LoadNodeKey(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if k, err = GenerateNodeKey(); err != nil {
		return nil, false, err
	}
	if err := k.Save(path); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// Save writes the key to path with mode 0600; it never overwrites a file.
func (k *NodeKey) Save(path string) error {
	if err := ethcrypto.SaveKeyFile(path, k.k); err != nil {
		return fmt.Errorf("attest: save node key: %w", err)
	}
	return nil
}

// Address returns the node's address.
func (k *NodeKey) Address() ethcrypto.Address { return k.k.Address() }

// ProverAddress returns the address in the form the prover binds in proofs.
func (k *NodeKey) ProverAddress() prover.Address { return prover.Address(k.k.Address()) }

// Sign computes the request's signing digest (truegpuv1.SigningDigest) and
// stores the 65-byte signature in its signature field. It works for every
// signed request of the node API: RegisterNodeRequest,
// StreamChallengesRequest, PollChallengesRequest, SubmitCommitmentRequest
// and SubmitProofRequest.
func (k *NodeKey) Sign(req proto.Message) error {
	digest, err := truegpuv1.SigningDigest(req)
	if err != nil {
		return fmt.Errorf("attest: sign: %w", err)
	}
	sig, err := k.k.SignHash(digest)
	if err != nil {
		return fmt.Errorf("attest: sign %s: %w", req.ProtoReflect().Descriptor().FullName(), err)
	}
	refl := req.ProtoReflect()
	refl.Set(refl.Descriptor().Fields().ByName(truegpuv1.SignatureField), protoreflect.ValueOfBytes(sig[:]))
	return nil
}

// VerifySignature recovers the signer of a signed request and reports
// whether it is addr. It is the check the oracle performs, offered here
// for tests and tools.
func VerifySignature(req proto.Message, addr ethcrypto.Address) (bool, error) {
	digest, err := truegpuv1.SigningDigest(req)
	if err != nil {
		return false, err
	}
	refl := req.ProtoReflect()
	sig := refl.Get(refl.Descriptor().Fields().ByName(truegpuv1.SignatureField)).Bytes()
	got, err := ethcrypto.RecoverAddress(digest, sig)
	if err != nil {
		return false, err
	}
	return got == addr, nil
}
