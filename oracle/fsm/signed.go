package fsm

import (
	"bytes"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// maxSignedRequest bounds a node's signed request carried in a command: a
// proof request holds a Groth16 proof and at most about 30 KB of timed
// openings.
const maxSignedRequest = 64 << 10

// recoverFunc recovers a signer (Config.Recover).
type recoverFunc = func(hash [32]byte, sig []byte) (ethcrypto.Address, error)

// nodeRequest is what the node's signed challenge requests have in common.
type nodeRequest interface {
	proto.Message
	GetChallengeId() string
	GetAddress() string
	GetSignature() []byte
}

// checkNodeSigned decodes a node's signed request carried in a command
// into msg and checks, deterministically, that it names the challenge and
// the challenge's node and that the node signed it (truegpuv1.SigningDigest,
// secp256k1 recovery). It is how every replica knows that a recorded
// commitment or a judged proof is the node's and not the leader's word.
func checkNodeSigned(recover recoverFunc, what string, signed []byte, msg nodeRequest, ch *truegpuv1.IssuedChallenge) error {
	id := IDString(ch.Id)
	switch {
	case len(signed) == 0:
		return invalid("%s: %s carries no signed request from the node", what, id)
	case len(signed) > maxSignedRequest:
		return invalid("%s: %s: signed request of %d bytes exceeds %d", what, id, len(signed), maxSignedRequest)
	}
	if err := proto.Unmarshal(signed, msg); err != nil {
		return invalid("%s: %s: the node's signed request does not decode", what, id)
	}
	if !strings.EqualFold(msg.GetChallengeId(), id) {
		return invalid("%s: %s: the node's signed request is for challenge %.80q", what, id, msg.GetChallengeId())
	}
	addr, err := ethcrypto.ParseAddress(msg.GetAddress())
	if err != nil || !bytes.Equal(addr[:], ch.Address) {
		return invalid("%s: %s: the signed request names node %.60q, the challenge is for %s", what, id, msg.GetAddress(), ethcrypto.Address(ch.Address))
	}
	digest, err := truegpuv1.SigningDigest(msg)
	if err != nil {
		return invalid("%s: %s: the node's signed request cannot be hashed", what, id)
	}
	got, err := recover(digest, msg.GetSignature())
	if err != nil || got != addr {
		return invalid("%s: %s: the request is not signed by node %s", what, id, addr)
	}
	return nil
}

// checkSignedCommitment checks a commitment command against the node's
// signed SubmitCommitmentRequest: the same roots, signed by the node.
func checkSignedCommitment(recover recoverFunc, c *truegpuv1.RecordCommitmentCommand, ch *truegpuv1.IssuedChallenge) error {
	var req truegpuv1.SubmitCommitmentRequest
	if err := checkNodeSigned(recover, "commitment", c.SignedRequest, &req, ch); err != nil {
		return err
	}
	if !bytes.Equal(req.Root, c.Root) || !bytes.Equal(req.TimedRoot, c.TimedRoot) {
		return invalid("commitment: %s: the recorded roots are not the ones the node signed", IDString(ch.Id))
	}
	return nil
}

// checkSignedVerdict checks a verdict against the node's signed request it
// decides: for COMMITMENT_LATE the late commitment, otherwise the proof
// submission whose proof and openings the verdict carries.
func checkSignedVerdict(recover recoverFunc, v *truegpuv1.VerdictRecord, ch *truegpuv1.IssuedChallenge, late bool) error {
	if late {
		var req truegpuv1.SubmitCommitmentRequest
		return checkNodeSigned(recover, "verdicts", v.SignedRequest, &req, ch)
	}
	var req truegpuv1.SubmitProofRequest
	if err := checkNodeSigned(recover, "verdicts", v.SignedRequest, &req, ch); err != nil {
		return err
	}
	if !bytes.Equal(req.Proof, v.Proof) || !bytes.Equal(req.TimedOpenings, v.TimedOpenings) {
		return invalid("verdicts: %s: the judged proof is not the one the node signed", IDString(ch.Id))
	}
	return nil
}

// checkSignedRegistration checks a registration against the node's signed
// RegisterNodeRequest: the same address and devices, signed by the node.
// A leader cannot register a node, or devices for it, that the node never
// asked for.
func checkSignedRegistration(recover recoverFunc, c *truegpuv1.RegisterNodeCommand) error {
	switch {
	case len(c.SignedRequest) == 0:
		return invalid("register: %s carries no signed request from the node", ethcrypto.Address(c.Address))
	case len(c.SignedRequest) > maxSignedRequest:
		return invalid("register: signed request of %d bytes exceeds %d", len(c.SignedRequest), maxSignedRequest)
	}
	var req truegpuv1.RegisterNodeRequest
	if err := proto.Unmarshal(c.SignedRequest, &req); err != nil {
		return invalid("register: the node's signed request does not decode")
	}
	addr, err := ethcrypto.ParseAddress(req.Address)
	if err != nil || !bytes.Equal(addr[:], c.Address) {
		return invalid("register: the signed request names node %.60q, the command %s", req.Address, ethcrypto.Address(c.Address))
	}
	if len(req.Devices) != len(c.Devices) {
		return invalid("register: %s: the recorded devices are not the ones the node signed", addr)
	}
	for i := range req.Devices {
		if !proto.Equal(req.Devices[i], c.Devices[i]) {
			return invalid("register: %s: the recorded devices are not the ones the node signed", addr)
		}
	}
	digest, err := truegpuv1.SigningDigest(&req)
	if err != nil {
		return invalid("register: %s: the node's signed request cannot be hashed", addr)
	}
	if got, err := recover(digest, req.Signature); err != nil || got != addr {
		return invalid("register: the request is not signed by node %s", addr)
	}
	return nil
}

// fillVerdictFromSigned completes a verdict on a proof submission whose
// proof and openings travel only inside the node's signed request (the
// pipeline sends them once, not twice): it copies them out of the request
// so that the checks and the stored record see them. A verdict that
// carries them itself is left alone; checkSignedVerdict then requires them
// to equal the signed ones.
func fillVerdictFromSigned(v *truegpuv1.VerdictRecord) {
	if v.Reason == string(reputation.ReasonCommitmentLate) || len(v.Proof) != 0 || len(v.TimedOpenings) != 0 ||
		len(v.SignedRequest) == 0 || len(v.SignedRequest) > maxSignedRequest {
		return
	}
	var req truegpuv1.SubmitProofRequest
	if proto.Unmarshal(v.SignedRequest, &req) != nil {
		return
	}
	v.Proof, v.TimedOpenings = req.Proof, req.TimedOpenings
}
