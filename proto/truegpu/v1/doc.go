// Package truegpuv1 is the wire contract between nodes, oracle members
// and consumers: the messages and services of proto/truegpu/v1 (NodeService,
// ReputationService, FeedService, AdminService, the members' internal
// MemberService and the Raft Command envelope), the Go, gRPC and REST
// gateway code generated from them, and, in sign.go, the two derivations
// that both sides compute byte for byte: SigningDigest, the digest a node
// signs for a request, and ChallengeID, a challenge's id from its nonce,
// node, device and issue time.
//
// It does not validate requests, apply commands or decide anything: the
// oracle (package oracle and oracle/fsm) and the attestor (package attest)
// do that with these messages. The OpenAPI document generated beside the
// code is docs/api/truegpu.swagger.json.
package truegpuv1
