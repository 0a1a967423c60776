package oracle

import (
	"sync"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/verifier"
)

// Field size caps of requests (the gRPC server also caps whole messages).
const (
	maxStringField = 256
	maxProofBytes  = verifier.ProofSize
)

// pipelineState is what the pipeline reads of the replicated state: the
// in-memory registration check, node records and challenges (*fsm.FSM).
type pipelineState interface {
	Registered(addr ethcrypto.Address) bool
	Node(addr ethcrypto.Address) (*truegpuv1.NodeRecord, error)
	Challenge(id []byte) (*truegpuv1.ChallengeState, error)
}

// pipeline checks submissions on the leader, cheapest checks first, and
// verifies proofs in batches on a bounded pool.
//
// It reads the replicated state only through state and replicates only
// through proposer; m supplies the configuration (clock, cluster id,
// admission policy, profile and verifying key) and the member-local caches
// (replayed requests, recovered signatures).
type pipeline struct {
	m        *Member
	cfg      PipelineConfig
	state    pipelineState
	proposer commandProposer
	jobs     chan verifyJob
	limits   *rateLimiter

	mu       sync.Mutex
	inflight map[string]bool // challenge ids with a proof being verified

	// drawSeed draws a commitment's sample seed; drawSeed (crypto/rand)
	// outside tests.
	drawSeed func() [fsm.SampleSeedSize]byte
}

func newPipeline(m *Member, state pipelineState, prop commandProposer) *pipeline {
	c := m.cfg.Pipeline
	return &pipeline{m: m, cfg: c, state: state, proposer: prop, jobs: make(chan verifyJob, c.QueueDepth), limits: newRateLimiter(c.RatePerNode, c.Burst), inflight: map[string]bool{}, drawSeed: drawSeed}
}
