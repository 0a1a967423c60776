package oracle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"google.golang.org/protobuf/proto"
)

// Admission decides whether a node that is not registered yet may
// register. The leader asks it after a registration's cluster, signature,
// timestamp and replay checks and before it proposes anything, so a
// refused registration costs a signature check and no log entry. A
// network plugs in its own policy (stake, proof of work, an allow list)
// with Config.Admission; the default is a RegistrationBudget.
// Re-registrations of known nodes are not asked about (each node has its
// own rate limit).
type Admission interface {
	AdmitRegistration(addr ethcrypto.Address, req *truegpuv1.RegisterNodeRequest, now time.Time) error
}

// Defaults of the RegistrationBudget a member uses without
// Config.Admission.
const (
	DefaultNewNodesPerSecond = 20
	DefaultNewNodeBurst      = 1000
)

var (
	// ErrNotAdmitted wraps a refusal by a custom Admission.
	ErrNotAdmitted = errors.New("oracle: registration not admitted")
	// ErrRegistrationBudget reports that the cluster's budget of new
	// registrations is spent for now.
	ErrRegistrationBudget = fmt.Errorf("%w: the cluster admits new nodes at a bounded rate and its budget is spent; retry later", ErrRateLimited)
)

// RegistrationBudget is the default Admission: one token bucket of new
// registrations for the whole cluster (held by the leader), refilled at
// PerSecond up to Burst. A flood of new identities, however many
// addresses it uses, is admitted at most at this rate, while registered
// nodes keep being served.
type RegistrationBudget struct {
	PerSecond float64
	Burst     int

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// AdmitRegistration takes a token or refuses with ErrRegistrationBudget.
func (b *RegistrationBudget) AdmitRegistration(_ ethcrypto.Address, _ *truegpuv1.RegisterNodeRequest, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens, b.last = float64(b.Burst), now
	}
	if now.After(b.last) {
		b.tokens = min(float64(b.Burst), b.tokens+now.Sub(b.last).Seconds()*b.PerSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return ErrRegistrationBudget
	}
	b.tokens--
	return nil
}

// checkSigned recovers the signer of a request and compares it with the
// claimed address.
func checkSigned(recover func([32]byte, []byte) (ethcrypto.Address, error), req interface {
	GetAddress() string
	GetSignature() []byte
}, msg proto.Message) (ethcrypto.Address, error) {
	addr, err := ethcrypto.ParseAddress(req.GetAddress())
	if err != nil {
		return addr, fmt.Errorf("%w: address: %w", ErrInvalidRequest, err)
	}
	if len(req.GetSignature()) != ethcrypto.SignatureLen {
		return addr, fmt.Errorf("%w: want a %d-byte signature, got %d bytes", ErrBadSignature, ethcrypto.SignatureLen, len(req.GetSignature()))
	}
	digest, err := truegpuv1.SigningDigest(msg)
	if err != nil {
		return addr, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	got, err := recover(digest, req.GetSignature())
	if err != nil {
		return addr, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if got != addr {
		return addr, fmt.Errorf("%w: signed by %s, not %s", ErrBadSignature, got, addr)
	}
	return addr, nil
}

// admit passes a signed submission from addr on: the node is registered
// (checked in memory, before any state is read for it) and within its rate
// limit.
func (p *pipeline) admit(addr ethcrypto.Address) error {
	if !p.state.Registered(addr) {
		return fmt.Errorf("%w: %s", ErrUnknownNode, addr)
	}
	if !p.limits.allow(addr, p.m.cfg.Now()) {
		return fmt.Errorf("%w: node %s", ErrRateLimited, addr)
	}
	return nil
}

// checkAccess verifies a signed challenge-access request.
func (m *Member) checkAccess(req interface {
	GetAddress() string
	GetSignature() []byte
	GetTimestampUnixMs() int64
	GetCluster() string
}, msg proto.Message) (ethcrypto.Address, error) {
	if err := m.checkCluster(req.GetCluster()); err != nil {
		return ethcrypto.Address{}, err
	}
	addr, err := checkSigned(m.recovered.Recover, req, msg)
	if err != nil {
		return addr, err
	}
	skew := m.cfg.Now().Sub(time.UnixMilli(req.GetTimestampUnixMs()))
	if skew > m.cfg.Pipeline.MaxClockSkew || -skew > m.cfg.Pipeline.MaxClockSkew {
		return addr, fmt.Errorf("%w: %v off; check the node's clock", ErrClockSkew, skew.Round(time.Second))
	}
	if _, err := m.fsm.Node(addr); errors.Is(err, fsm.ErrNotFound) {
		return addr, fmt.Errorf("%w: %s", ErrUnknownNode, addr)
	} else if err != nil {
		return addr, err
	}
	if err := m.checkReplay(msg, req.GetTimestampUnixMs()); err != nil {
		return addr, err
	}
	return addr, nil
}

// Register checks and replicates a node registration.
func (p *pipeline) Register(ctx context.Context, req *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	now := p.m.cfg.Now()
	if len(req.Devices) == 0 || len(req.Devices) > p.cfg.MaxDevices {
		return nil, fmt.Errorf("%w: want 1..%d devices, got %d", ErrTooLarge, p.cfg.MaxDevices, len(req.Devices))
	}
	for i, d := range req.Devices {
		if err := checkDevice(i, d); err != nil {
			return nil, err
		}
	}
	if err := p.m.checkCluster(req.Cluster); err != nil {
		return nil, err
	}
	addr, err := checkSigned(p.m.recovered.Recover, req, req)
	if err != nil {
		return nil, err
	}
	skew := now.Sub(time.UnixMilli(req.TimestampUnixMs))
	if skew > p.cfg.MaxClockSkew || -skew > p.cfg.MaxClockSkew {
		return nil, fmt.Errorf("%w: %v off; check the node's clock", ErrClockSkew, skew.Round(time.Second))
	}
	if err := p.m.checkReplay(req, req.TimestampUnixMs); err != nil {
		return nil, err
	}
	if !p.limits.allow(addr, now) {
		return nil, fmt.Errorf("%w: node %s", ErrRateLimited, addr)
	}
	if err := p.admitNew(addr, req, now); err != nil {
		return nil, err
	}
	signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	idx, err := p.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_RegisterNode{
		RegisterNode: &truegpuv1.RegisterNodeCommand{Address: addr[:], Devices: req.Devices, SignedRequest: signed}}})
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.RegisterNodeResponse{Address: addr.String(), AppliedIndex: idx}
	if rec, err := p.state.Node(addr); err == nil {
		resp.Status = rec.Status
	}
	return resp, nil
}

func checkDevice(i int, d *truegpuv1.Device) error {
	if d.GetFingerprint().GetUuid() == "" {
		return fmt.Errorf("%w: device %d has no UUID", ErrInvalidRequest, i)
	}
	if d.Index != uint32(i) {
		return fmt.Errorf("%w: device %d has index %d; list devices by index from 0", ErrInvalidRequest, i, d.Index)
	}
	fp := d.Fingerprint
	for _, s := range []string{d.ClaimedClass, fp.Uuid, fp.Serial, fp.BoardPartNumber, fp.PciBusId, fp.Name, fp.VbiosVersion, fp.DriverVersion, fp.CcMode} {
		if len(s) > maxStringField {
			return fmt.Errorf("%w: device %d has a field over %d bytes", ErrTooLarge, i, maxStringField)
		}
	}
	if len(fp.UnsupportedFields) > 32 {
		return fmt.Errorf("%w: device %d lists %d unsupported fields", ErrTooLarge, i, len(fp.UnsupportedFields))
	}
	if _, err := gpuclass.Lookup(d.ClaimedClass); err != nil {
		return fmt.Errorf("%w: device %d claims %q", ErrUnknownClass, i, d.ClaimedClass)
	}
	return nil
}

// admitNew asks the admission policy about a node that is not registered.
func (p *pipeline) admitNew(addr ethcrypto.Address, req *truegpuv1.RegisterNodeRequest, now time.Time) error {
	if p.state.Registered(addr) {
		return nil
	}
	err := p.m.cfg.Admission.AdmitRegistration(addr, req, now)
	if err == nil || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrNotAdmitted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNotAdmitted, err)
}
