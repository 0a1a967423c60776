package oracle

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
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

// admitNew asks the admission policy about a node that is not registered.
func (m *Member) admitNew(addr ethcrypto.Address, req *truegpuv1.RegisterNodeRequest, now time.Time) error {
	if m.fsm.Registered(addr) {
		return nil
	}
	err := m.cfg.Admission.AdmitRegistration(addr, req, now)
	if err == nil || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrNotAdmitted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNotAdmitted, err)
}
