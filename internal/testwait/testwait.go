// Package testwait waits, in tests, for a condition that another goroutine
// makes true (a leader elected, an entry applied, a report signed). It
// evaluates the condition at once and then after growing pauses, up to a
// deadline; a condition that never holds fails the test with a message
// saying what was awaited, instead of hanging or sleeping a fixed time.
//
// The deadline bounds a failing test's run and is never a measurement: set
// it far above what the wait takes on a loaded machine. Conditions run on
// the caller's goroutine, so they may call t.Fatal themselves.
package testwait

import (
	"fmt"
	"testing"
	"time"
)

// The pause between two evaluations starts at firstPause and doubles up to
// maxPause.
const (
	firstPause = 5 * time.Millisecond
	maxPause   = 100 * time.Millisecond
)

// Until waits until cond returns true, for at most timeout. If it never
// does, Until fails t with the message formatted from format and args.
func Until(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	For(t, timeout, func() (struct{}, bool) { return struct{}{}, cond() }, format, args...)
}

// For waits until get reports ok, for at most timeout, and returns the
// value it reported then. If get never reports ok, For fails t with the
// message formatted from format and args.
func For[T any](t testing.TB, timeout time.Duration, get func() (T, bool), format string, args ...any) T {
	t.Helper()
	var v T
	err := poll(timeout, func() error {
		var ok bool
		if v, ok = get(); !ok {
			return errNotYet
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s (waited %v)", fmt.Sprintf(format, args...), timeout)
	}
	return v
}

// UntilNil waits until cond returns nil, for at most timeout; cond's
// error says what is still missing. If cond never returns nil, UntilNil
// fails t with the message formatted from format and args, followed by
// the last error cond returned.
func UntilNil(t testing.TB, timeout time.Duration, cond func() error, format string, args ...any) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("%s (waited %v): %v", fmt.Sprintf(format, args...), timeout, err)
	}
}

type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet error = notYet{}

// poll evaluates cond until it returns nil or timeout has passed since the
// first evaluation; it returns cond's last error. cond is evaluated at
// least once, and once more at the deadline.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	pause := firstPause
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, maxPause)
	}
}
