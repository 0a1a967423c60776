package oracle

import (
	"errors"
)

// Errors of a member. Compare with errors.Is. They map to gRPC codes in
// the server (see grpc.go).
var (
	// ErrNotLeader reports a leader-only operation on a follower. The
	// error text names the leader when one is known.
	ErrNotLeader = errors.New("oracle: not the leader")
	// ErrNoLeader reports that the cluster has no leader right now; retry
	// with backoff.
	ErrNoLeader = errors.New("oracle: no leader")
	// ErrOutcomeUnknown reports that leadership was lost while a command
	// was in flight: it may or may not have been applied. Retrying is
	// safe; submissions are idempotent by (node, nonce).
	ErrOutcomeUnknown = errors.New("oracle: outcome unknown, leadership lost")
	// ErrOverloaded reports a full queue; retry after a pause.
	ErrOverloaded = errors.New("oracle: overloaded")
	// ErrInvalidConfig reports an unusable member configuration.
	ErrInvalidConfig = errors.New("oracle: invalid configuration")
	// ErrClosed reports use of a closed member.
	ErrClosed = errors.New("oracle: member closed")
)

// Rejections of the verification pipeline. Each names the reason a
// submission was refused before it could become a verdict; compare with
// errors.Is. Reason returns the machine-readable code.
var (
	ErrInvalidRequest = errors.New("oracle: invalid request")
	ErrBadSignature   = errors.New("oracle: signature does not match the address")
	ErrUnknownNode    = errors.New("oracle: node is not registered")
	ErrRateLimited    = errors.New("oracle: rate limit exceeded")
	ErrTooLarge       = errors.New("oracle: message too large")
	ErrClockSkew      = errors.New("oracle: request timestamp too far from the oracle's clock")
	ErrUnknownNonce   = errors.New("oracle: no open challenge with this id for this node")
	ErrNonceReused    = errors.New("oracle: challenge already answered")
	ErrNotCommitted   = errors.New("oracle: challenge has no commitment yet")
	ErrProofLate      = errors.New("oracle: proof after the proof deadline")
	ErrUnknownClass   = errors.New("oracle: claimed class is not in the class table")
)

// Reason codes of refused requests, carried in the gRPC error's ErrorInfo
// (and the REST error body) so that a client can act on them. They are
// never recorded: a verdict's reason, and every reason in a node's standing,
// is a reputation.Reason, the one vocabulary of what a node did.
const (
	ReasonBadSignature   = "SIGNATURE_INVALID"
	ReasonUnknownNode    = "NODE_UNKNOWN"
	ReasonRateLimited    = "RATE_LIMITED"
	ReasonTooLarge       = "MESSAGE_TOO_LARGE"
	ReasonClockSkew      = "TIMESTAMP_SKEW"
	ReasonUnknownNonce   = "NONCE_UNKNOWN"
	ReasonNonceReused    = "NONCE_REUSED"
	ReasonNotCommitted   = "NOT_COMMITTED"
	ReasonProofLate      = "PROOF_LATE"
	ReasonInvalidRequest = "INVALID_REQUEST"
	ReasonUnknownClass   = "CLASS_UNKNOWN"
)

// Reason returns the reason code of a pipeline rejection, or "" for other
// errors.
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		code string
	}{
		{ErrBadSignature, ReasonBadSignature}, {ErrUnknownNode, ReasonUnknownNode},
		{ErrRateLimited, ReasonRateLimited}, {ErrTooLarge, ReasonTooLarge},
		{ErrClockSkew, ReasonClockSkew}, {ErrUnknownNonce, ReasonUnknownNonce},
		{ErrNonceReused, ReasonNonceReused}, {ErrNotCommitted, ReasonNotCommitted},
		{ErrProofLate, ReasonProofLate}, {ErrUnknownClass, ReasonUnknownClass},
		{ErrInvalidRequest, ReasonInvalidRequest},
	} {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return ""
}
