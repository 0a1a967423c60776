package testwait

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of ending the
// test, so the helpers' failures can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

// after returns a condition that holds from its n-th evaluation on, and
// the count of evaluations.
func after(n int) (func() bool, *int) {
	calls := 0
	return func() bool { calls++; return calls >= n }, &calls
}

func TestUntilHolds(t *testing.T) {
	r := &recorder{TB: t}
	cond, calls := after(4)
	Until(r, time.Minute, cond, "never")
	if r.failed != "" || *calls != 4 {
		t.Fatalf("a condition that holds at its 4th evaluation: failure %q after %d evaluations", r.failed, *calls)
	}
	// A condition that holds at once is evaluated once.
	cond, calls = after(1)
	Until(r, time.Minute, cond, "never")
	if r.failed != "" || *calls != 1 {
		t.Fatalf("a condition that holds at once: failure %q after %d evaluations", r.failed, *calls)
	}
}

func TestUntilFails(t *testing.T) {
	r := &recorder{TB: t}
	cond, calls := after(1 << 30)
	Until(r, 30*time.Millisecond, cond, "no leader among %d members", 3)
	if !strings.HasPrefix(r.failed, "no leader among 3 members (waited 30ms)") {
		t.Fatalf("failure message %q", r.failed)
	}
	if *calls < 2 {
		t.Fatalf("the condition was evaluated %d times, want at least at the start and at the deadline", *calls)
	}
}

func TestForReturnsTheValue(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	got := For(r, time.Minute, func() (string, bool) { n++; return fmt.Sprint("leader-", n), n == 3 }, "never")
	if r.failed != "" || got != "leader-3" {
		t.Fatalf("For returned %q (failure %q), want the value of the evaluation that held", got, r.failed)
	}
	got = For(r, 10*time.Millisecond, func() (string, bool) { return "partial", false }, "no %s", "value")
	if got != "partial" || !strings.HasPrefix(r.failed, "no value (waited 10ms)") {
		t.Fatalf("a value that never comes: returned %q, failure %q", got, r.failed)
	}
}

func TestUntilNil(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	UntilNil(r, time.Minute, func() error {
		if n++; n < 3 {
			return errors.New("behind")
		}
		return nil
	}, "never")
	if r.failed != "" || n != 3 {
		t.Fatalf("failure %q after %d evaluations", r.failed, n)
	}
	n = 0
	UntilNil(r, 20*time.Millisecond, func() error { n++; return fmt.Errorf("applied indexes [%d 7]", n) }, "members did not converge")
	if !strings.HasPrefix(r.failed, "members did not converge (waited 20ms): applied indexes [") || !strings.HasSuffix(r.failed, fmt.Sprintf("[%d 7]", n)) {
		t.Fatalf("failure %q does not carry the last error (evaluation %d)", r.failed, n)
	}
}
