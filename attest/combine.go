package attest

import (
	"context"
	"errors"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// Identity is the identity half of a Device: fingerprint and telemetry.
// NVML devices implement it; they cannot run work themselves. Its methods
// follow the concurrency contract of Device.
type Identity interface {
	Fingerprint(ctx context.Context) (Fingerprint, error)
	Telemetry(ctx context.Context) (Telemetry, error)
	Close() error
}

// Executor is the compute half of a Device: it runs workloads and holds
// their results. Its methods follow the concurrency contract of Device.
type Executor interface {
	Run(ctx context.Context, w Workload) (Commitment, error)
	Results(nonce prover.Nonce) ([]int32, error)
	OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error)
	Close() error
}

// Combine returns a Device that reports id's fingerprint and telemetry and
// runs workloads on ex: for example an NVML-identified GPU whose work runs
// through the CUDA backend. Close closes both. If ex claims a class (see
// ClassClaimer) the combined device does not: the class of a combined
// device comes from the identity's product name. If ex runs the memory
// phase (Walker), so does the combined device.
func Combine(id Identity, ex Executor) Device {
	c := &combined{id: id, ex: ex}
	if w, ok := ex.(Walker); ok {
		return &combinedWalker{combined: c, w: w}
	}
	return c
}

// combinedWalker is a combined device whose executor runs the memory
// phase.
type combinedWalker struct {
	*combined
	w Walker
}

func (c *combinedWalker) Walk(ctx context.Context, w Workload, seed [memwalk.SeedSize]byte) ([32]byte, error) {
	return c.w.Walk(ctx, w, seed)
}

func (c *combinedWalker) OpenWalk(nonce prover.Nonce, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	return c.w.OpenWalk(nonce, checkSeed)
}

type combined struct {
	id Identity
	ex Executor
}

func (c *combined) Fingerprint(ctx context.Context) (Fingerprint, error) {
	return c.id.Fingerprint(ctx)
}

func (c *combined) Telemetry(ctx context.Context) (Telemetry, error) {
	return c.id.Telemetry(ctx)
}

func (c *combined) Run(ctx context.Context, w Workload) (Commitment, error) {
	return c.ex.Run(ctx, w)
}

func (c *combined) Results(nonce prover.Nonce) ([]int32, error) {
	return c.ex.Results(nonce)
}

func (c *combined) OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error) {
	return c.ex.OpenTimed(nonce, seed)
}

func (c *combined) Close() error {
	return errors.Join(c.ex.Close(), c.id.Close())
}
