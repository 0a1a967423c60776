package oracle

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestRegistrationBudget: new nodes register within the cluster's budget
// whatever addresses they use; beyond it they are refused before anything
// is proposed, while registered nodes still re-register.
func TestRegistrationBudget(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Now = clock.Now
		cfg.Admission = &RegistrationBudget{PerSecond: 1, Burst: 3}
	})
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	for i := range 3 {
		if _, err := m.pipeline.Register(ctx, newTestNode(i).registerReq(clock.Now())); err != nil {
			t.Fatalf("node %d within the budget: %v", i, err)
		}
	}
	applied := m.fsm.AppliedIndex()
	_, err := m.pipeline.Register(ctx, newTestNode(3).registerReq(clock.Now()))
	if !errors.Is(err, ErrRegistrationBudget) || status.Code(ToStatus(quietLog(), "", err)) != codes.ResourceExhausted {
		t.Fatalf("fourth new node: %v, want ErrRegistrationBudget (ResourceExhausted)", err)
	}
	if m.fsm.AppliedIndex() != applied {
		t.Fatal("a refused registration reached the log")
	}
	// A registered node re-registers (new devices, say) outside the budget.
	if _, err := m.pipeline.Register(ctx, newTestNode(0).registerReq(clock.Now().Add(time.Millisecond))); err != nil {
		t.Fatalf("re-registration of a known node: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := m.pipeline.Register(ctx, newTestNode(3).registerReq(clock.Now())); err != nil {
		t.Fatalf("after a second's refill: %v", err)
	}
}

type denyAll struct{ asked int }

func (d *denyAll) AdmitRegistration(ethcrypto.Address, *truegpuv1.RegisterNodeRequest, time.Time) error {
	d.asked++
	return errors.New("no stake")
}

// TestCustomAdmission: a network's own admission policy decides new
// registrations; its refusal is PermissionDenied.
func TestCustomAdmission(t *testing.T) {
	policy := &denyAll{}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Admission = policy })
	m := c.leader(5 * time.Second)
	_, err := m.pipeline.Register(context.Background(), newTestNode(1).registerReq(time.Now()))
	if !errors.Is(err, ErrNotAdmitted) || status.Code(ToStatus(quietLog(), "", err)) != codes.PermissionDenied || policy.asked != 1 {
		t.Fatalf("registration refused by the policy: %v (asked %d), want ErrNotAdmitted (PermissionDenied)", err, policy.asked)
	}
}
