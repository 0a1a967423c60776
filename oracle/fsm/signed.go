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
// proof request holds a Groth16 proof, at most about 30 KB of timed
// openings and at most about 100 KB of walk openings.
const maxSignedRequest = 192 << 10

// recoverFunc recovers a signer (Config.Recover).
type recoverFunc = func(hash [32]byte, sig []byte) (ethcrypto.Address, error)

// signedRequest is what every signed node request has.
type signedRequest interface {
	proto.Message
	GetAddress() string
	GetSignature() []byte
}

// nodeRequest is a signed request about one challenge.
type nodeRequest interface {
	signedRequest
	GetChallengeId() string
}

// checkSignedBy decodes a node's signed request carried in a command into
// msg and checks, deterministically, that it names node addr and that the
// node signed it (truegpuv1.SigningDigest, secp256k1 recovery). It is how
// every replica knows that a registration, a recorded commitment or a
// judged proof is the node's and not the leader's word. what and subject
// name the command and its object in errors.
func checkSignedBy(recover recoverFunc, what, subject string, signed []byte, msg signedRequest, addr []byte) error {
	switch {
	case len(signed) == 0:
		return invalid("%s: %s carries no signed request from the node", what, subject)
	case len(signed) > maxSignedRequest:
		return invalid("%s: %s: signed request of %d bytes exceeds %d", what, subject, len(signed), maxSignedRequest)
	}
	if err := proto.Unmarshal(signed, msg); err != nil {
		return invalid("%s: %s: the node's signed request does not decode", what, subject)
	}
	named, err := ethcrypto.ParseAddress(msg.GetAddress())
	if err != nil || !bytes.Equal(named[:], addr) {
		return invalid("%s: %s: the signed request names node %.60q, not %s", what, subject, msg.GetAddress(), ethcrypto.Address(addr))
	}
	digest, err := truegpuv1.SigningDigest(msg)
	if err != nil {
		return invalid("%s: %s: the node's signed request cannot be hashed", what, subject)
	}
	if got, err := recover(digest, msg.GetSignature()); err != nil || got != named {
		return invalid("%s: %s: the request is not signed by node %s", what, subject, named)
	}
	return nil
}

// checkNodeSigned is checkSignedBy for a request about challenge ch: it
// must also name that challenge.
func checkNodeSigned(recover recoverFunc, what string, signed []byte, msg nodeRequest, ch *truegpuv1.IssuedChallenge) error {
	id := truegpuv1.FormatChallengeID(ch.Id)
	if err := checkSignedBy(recover, what, id, signed, msg, ch.Address); err != nil {
		return err
	}
	if !strings.EqualFold(msg.GetChallengeId(), id) {
		return invalid("%s: %s: the node's signed request is for challenge %.80q", what, id, msg.GetChallengeId())
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
		return invalid("commitment: %s: the recorded roots are not the ones the node signed", truegpuv1.FormatChallengeID(ch.Id))
	}
	return nil
}

// checkSignedWalk checks a walk command against the node's signed
// SubmitWalkRequest: the same walk root, signed by the node.
func checkSignedWalk(recover recoverFunc, c *truegpuv1.RecordWalkCommand, ch *truegpuv1.IssuedChallenge) error {
	var req truegpuv1.SubmitWalkRequest
	if err := checkNodeSigned(recover, "walk", c.SignedRequest, &req, ch); err != nil {
		return err
	}
	if !bytes.Equal(req.WalkRoot, c.WalkRoot) {
		return invalid("walk: %s: the recorded walk root is not the one the node signed", truegpuv1.FormatChallengeID(ch.Id))
	}
	return nil
}

// checkSignedWalkLate checks a WALK_LATE verdict against the node's late
// SubmitWalkRequest it carries.
func checkSignedWalkLate(recover recoverFunc, v *truegpuv1.VerdictRecord, ch *truegpuv1.IssuedChallenge) error {
	var req truegpuv1.SubmitWalkRequest
	return checkNodeSigned(recover, "verdicts", v.SignedRequest, &req, ch)
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
	if !bytes.Equal(req.Proof, v.Proof) || !bytes.Equal(req.TimedOpenings, v.TimedOpenings) || !bytes.Equal(req.WalkOpenings, v.WalkOpenings) {
		return invalid("verdicts: %s: the judged proof is not the one the node signed", truegpuv1.FormatChallengeID(ch.Id))
	}
	return nil
}

// checkSignedRegistration checks a registration against the node's signed
// RegisterNodeRequest: the same address and devices, signed by the node.
// A leader cannot register a node, or devices for it, that the node never
// asked for.
func checkSignedRegistration(recover recoverFunc, c *truegpuv1.RegisterNodeCommand) error {
	addr := ethcrypto.Address(c.Address)
	var req truegpuv1.RegisterNodeRequest
	if err := checkSignedBy(recover, "register", addr.String(), c.SignedRequest, &req, c.Address); err != nil {
		return err
	}
	if len(req.Devices) != len(c.Devices) {
		return invalid("register: %s: the recorded devices are not the ones the node signed", addr)
	}
	for i := range req.Devices {
		if !proto.Equal(req.Devices[i], c.Devices[i]) {
			return invalid("register: %s: the recorded devices are not the ones the node signed", addr)
		}
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
	if v.Reason == string(reputation.ReasonCommitmentLate) || v.Reason == string(reputation.ReasonWalkLate) ||
		len(v.Proof) != 0 || len(v.TimedOpenings) != 0 || len(v.WalkOpenings) != 0 ||
		len(v.SignedRequest) == 0 || len(v.SignedRequest) > maxSignedRequest {
		return
	}
	var req truegpuv1.SubmitProofRequest
	if proto.Unmarshal(v.SignedRequest, &req) != nil {
		return
	}
	v.Proof, v.TimedOpenings, v.WalkOpenings = req.Proof, req.TimedOpenings, req.WalkOpenings
}
