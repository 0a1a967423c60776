package attest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// Sentinel errors of package attest and of its device backends. Compare
// with errors.Is; backends wrap them with the detail a user can act on.
var (
	// ErrClosed reports a call on a device after Close.
	ErrClosed = errors.New("attest: device closed")
	// ErrNoResults reports Results for a nonce whose results the device
	// does not hold (never run, or evicted by later runs).
	ErrNoResults = errors.New("attest: no results held for nonce")
	// ErrNoDevice reports that the requested device does not exist or no
	// backend could open one.
	ErrNoDevice = errors.New("attest: no such device")
	// ErrUnavailable reports a device that is temporarily unable to run
	// work (busy, lost, or, for simulated devices, modelled downtime).
	ErrUnavailable = errors.New("attest: device unavailable")
	// ErrNotSupported reports an operation the backend cannot perform.
	ErrNotSupported = errors.New("attest: not supported by this device")
	// ErrBadWorkload reports a workload with a missing or invalid profile.
	ErrBadWorkload = errors.New("attest: invalid workload")
)

// Workload is one challenge for a device: the parameter profile and the
// nonce that seeds the matrices.
type Workload struct {
	Profile *prover.Profile
	Nonce   prover.Nonce
	// Timed is the timed phase to compute after the profile workload (see
	// package prover/timed); the zero Spec means none.
	Timed timed.Spec
	// TimedModel is the timed phase the deadline was sized from: equal to
	// Timed, except on development clusters that have nodes compute a
	// small stand-in, where simulated devices model TimedModel's time.
	TimedModel timed.Spec
	// Memory is the memory phase (package prover/memwalk): Run fills its
	// table and commits to it (Commitment.TableRoot); the walk follows
	// the oracle's walk seed (Walker). The zero Spec means none.
	Memory memwalk.Spec
	// MemoryModel is the memory phase the deadlines were sized from: equal
	// to Memory except on development clusters that compute a stand-in.
	MemoryModel memwalk.Spec
}

// Validate reports a workload that no device can run.
func (w Workload) Validate() error {
	if w.Profile == nil {
		return fmt.Errorf("%w: no profile", ErrBadWorkload)
	}
	if err := w.Profile.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadWorkload, err)
	}
	if !w.Timed.IsZero() {
		if err := w.Timed.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadWorkload, err)
		}
	}
	if !w.Memory.IsZero() {
		if err := w.Memory.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadWorkload, err)
		}
	}
	return nil
}

// Commitment is what a device returns for a workload: the Poseidon2 Merkle
// root over its results, and the time the device spent from the start of
// Run to holding the root (informational; the oracle measures arrival on
// its own clock).
type Commitment struct {
	Root [32]byte
	// TimedRoot is the timed phase's commitment (timed.Result.Root); zero
	// for a workload without a timed phase.
	TimedRoot [32]byte
	// TableRoot is the memory phase's table commitment
	// (memwalk.Table.Root); zero for a workload without a memory phase.
	TableRoot [32]byte
	Elapsed   time.Duration
}

// Device is one accelerator as the attestor sees it: its identity, its
// telemetry, and the ability to run a seeded workload, commit to the
// results and hold them for the proof.
//
// Concurrency: Fingerprint, Telemetry and Results may be called
// concurrently with each other and with Run. Run may be called
// concurrently; an implementation that models one physical accelerator
// may serialize runs (a GPU answers one challenge at a time, which is what
// storms measure), so a Run can block while another is in progress until
// its context is done. Close may be called concurrently with every other
// method; calls that start after Close return an error wrapping ErrClosed,
// and a Run in progress is cancelled or allowed to finish. Close is
// idempotent.
//
// Results: after Run returns a commitment for a nonce, Results(nonce)
// returns the cells the commitment was computed over until at least
// MinHeldResults later runs have completed; implementations may keep
// more. The returned slice must not be modified by the caller.
type Device interface {
	// Fingerprint returns the device's identity. It is stable for the
	// lifetime of the device; fields the hardware does not report are
	// empty and named in Fingerprint.Unsupported.
	Fingerprint(ctx context.Context) (Fingerprint, error)
	// Telemetry returns the device's current sensors.
	Telemetry(ctx context.Context) (Telemetry, error)
	// Run computes the workload, commits to the results and returns the
	// commitment. It honours ctx cancellation and returns an error
	// wrapping ctx.Err() when cancelled.
	Run(ctx context.Context, w Workload) (Commitment, error)
	// Results returns the cells (row-major M·N int32) of the most recent
	// run with this nonce, or an error wrapping ErrNoResults.
	Results(nonce prover.Nonce) ([]int32, error)
	// OpenTimed returns the encoded openings (timed.Verify's input) of the
	// timed phase of the most recent run with this nonce, at the cells the
	// oracle's sample seed selects, or an error wrapping ErrNoResults.
	OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error)
	// Close releases the device.
	Close() error
}

// Walker is implemented by devices that run the memory phase: Run fills
// the table of a workload with a memory phase and commits to it, and Walk
// walks that table once the oracle's walk seed (the commitment's sample
// seed) has arrived. The walk is time-critical like Run: its root must
// reach the oracle within the phase's walk deadline.
type Walker interface {
	// Walk walks the table of the most recent run with w's nonce and
	// returns the walk commitment (memwalk.Walk.Root), or an error
	// wrapping ErrNoResults when the table is no longer held.
	Walk(ctx context.Context, w Workload, seed [memwalk.SeedSize]byte) ([32]byte, error)
	// OpenWalk returns the encoded walk openings (memwalk.Verify's input)
	// for the oracle's check seed, or an error wrapping ErrNoResults.
	OpenWalk(nonce prover.Nonce, checkSeed [memwalk.SeedSize]byte) ([]byte, error)
}

// MinHeldResults is how many completed runs every Device keeps results
// for. Proving follows the commitment closely, so a few suffice.
const MinHeldResults = 4

// ClassClaimer is implemented by devices that know which class from the
// gpuclass table they claim (simulated devices, and backends configured
// with an explicit class). For other devices the attestor derives the
// class from the fingerprint's product name.
type ClassClaimer interface {
	ClaimedClass() string
}

// ProveFunc produces the proof the agent submits for a committed workload:
// w is the workload, s the committed root and the oracle's sample seed,
// node the prover address the proof binds, and honest produces the honest
// proof (prover.Prove over the device's held results with the agent's
// proving key, checked against the committed root) when the hook wants
// one. An error means no proof is submitted for the challenge.
//
// AgentDevice.Prove sets one per device; a device without one gets the
// honest proof. Adversarial simulations (attest/sim's Replayer, Grinder,
// Abandoner and Garbage, whose Proof methods are ProveFuncs; sim.ProveHook
// picks the one a simulated device needs) use it to model nodes that
// replay old proofs, send garbage or abandon challenges; the oracle must
// reject what they send.
type ProveFunc func(ctx context.Context, w Workload, s Sampling, node prover.Address, honest func(context.Context) ([]byte, error)) ([]byte, error)

// Sampling is what selects the cells a proof opens: the committed root and
// the sample seed the oracle drew when it recorded that root.
type Sampling struct {
	Root [32]byte
	Seed prover.SampleSeed
}

// Telemetry is a device's current sensor readings. Readings the device
// does not report are zero and named in Unsupported.
type Telemetry struct {
	TemperatureC       uint32   `json:"temperature_c"`
	PowerMilliwatts    uint32   `json:"power_mw"`
	SMClockMHz         uint32   `json:"sm_clock_mhz"`
	MemoryClockMHz     uint32   `json:"memory_clock_mhz"`
	UtilizationPercent uint32   `json:"utilization_percent"`
	MemoryUsedBytes    uint64   `json:"memory_used_bytes"`
	Unsupported        []string `json:"unsupported,omitempty"`
}

// CloseState is the closed flag every device backend keeps: Close may be
// called any number of times, and calls after it fail with ErrClosed.
type CloseState struct{ closed atomic.Bool }

// Close marks the state closed and reports whether this call did it.
func (c *CloseState) Close() (first bool) { return !c.closed.Swap(true) }

// Closed reports whether Close has been called.
func (c *CloseState) Closed() bool { return c.closed.Load() }
