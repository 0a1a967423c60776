package truegpuv1

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/sha3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// SignatureField is the name of the field that carries a request's
// signature; it is cleared before the request is hashed for signing.
const SignatureField = "signature"

// ErrNotSignable is returned for a message type that has no signature field.
var ErrNotSignable = errors.New("truegpuv1: message has no signature field")

// SigningDigest returns the 32-byte digest a node signs for a request
// (RegisterNodeRequest, StreamChallengesRequest, PollChallengesRequest,
// SubmitCommitmentRequest, SubmitWalkRequest, SubmitProofRequest):
//
//	keccak256("truegpu.v1 signed request\x00" || full message name || "\x00" ||
//	          deterministic protobuf encoding of the request with signature cleared)
//
// The message name separates domains, so a signature over one request type
// is never valid for another. The node signs the digest directly with its
// secp256k1 key (65 bytes r||s||v); the oracle recovers the address from it
// and compares it with the request's address field.
func SigningDigest(m proto.Message) ([32]byte, error) {
	var out [32]byte
	if m == nil {
		return out, fmt.Errorf("truegpuv1: nil message")
	}
	refl := m.ProtoReflect()
	fd := refl.Descriptor().Fields().ByName(SignatureField)
	if fd == nil || fd.Kind() != protoreflect.BytesKind {
		return out, fmt.Errorf("%w: %s", ErrNotSignable, refl.Descriptor().FullName())
	}
	c := proto.Clone(m)
	c.ProtoReflect().Clear(fd)
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return out, fmt.Errorf("truegpuv1: encode %s for signing: %w", refl.Descriptor().FullName(), err)
	}
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte("truegpu.v1 signed request\x00"))
	h.Write([]byte(refl.Descriptor().FullName()))
	h.Write([]byte{0})
	h.Write(body)
	h.Sum(out[:0])
	return out, nil
}

// ChallengeID returns the 32-byte challenge id for a nonce, node address,
// device index and issue time:
//
//	uint64be(issuedAtUnixMs) || keccak256("truegpu.v1 challenge\x00" || nonce ||
//	    address || uint32be(device) || uint64be(issuedAtUnixMs))[:24]
//
// Every replica derives the same id from the command. The issue time leads
// so that ids sort by issue time: the oracle stores challenges under their
// id, and time-ordered keys append to its state instead of landing at random
// places in it (which would make every later compaction rewrite them). The
// 24 hashed bytes keep ids unique and unpredictable before issue.
func ChallengeID(nonce []byte, address []byte, device uint32, issuedAtUnixMs int64) [32]byte {
	var out [32]byte
	var idx [4]byte
	var at [8]byte
	binary.BigEndian.PutUint32(idx[:], device)
	binary.BigEndian.PutUint64(at[:], uint64(issuedAtUnixMs))
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte("truegpu.v1 challenge\x00"))
	h.Write(nonce)
	h.Write(address)
	h.Write(idx[:])
	h.Write(at[:])
	var sum [32]byte
	h.Sum(sum[:0])
	copy(out[:8], at[:])
	copy(out[8:], sum[:24])
	return out
}
