package oracle

import (
	"sync"

	"github.com/truegpu/truegpu/oracle/fsm"
	"github.com/truegpu/truegpu/verifier"
)

// Field size caps of requests (the gRPC server also caps whole messages).
const (
	maxStringField = 256
	maxProofBytes  = verifier.ProofSize
)

// pipeline checks submissions on the leader, cheapest checks first, and
// verifies proofs in batches on a bounded pool.
type pipeline struct {
	m      *Member
	cfg    PipelineConfig
	jobs   chan verifyJob
	limits *rateLimiter

	mu       sync.Mutex
	inflight map[string]bool // challenge ids with a proof being verified

	// drawSeed draws a commitment's sample seed; drawSeed (crypto/rand)
	// outside tests.
	drawSeed func() [fsm.SampleSeedSize]byte
}

func newPipeline(m *Member) *pipeline {
	c := m.cfg.Pipeline
	return &pipeline{m: m, cfg: c, jobs: make(chan verifyJob, c.QueueDepth), limits: newRateLimiter(c.RatePerNode, c.Burst), inflight: map[string]bool{}, drawSeed: drawSeed}
}
