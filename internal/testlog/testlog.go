// Package testlog gives tests a *slog.Logger that writes to the test's
// log (t.Log), so that what a component logs shows with the test that ran
// it: under -v, or when the test fails.
//
// Lines logged after the test has finished (by goroutines that outlive
// it) are dropped instead of making the testing package panic.
package testlog

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// New returns a logger that writes text records of level Info and above
// to t.Log.
func New(t testing.TB) *slog.Logger { return NewLevel(t, slog.LevelInfo) }

// NewLevel returns a logger that writes text records of level and above
// to t.Log.
func NewLevel(t testing.TB, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{Level: level}))
}

// Writer returns a writer that passes each write to t.Log, without its
// trailing newline (slog's handlers write one record per call). Writes
// after the cleanup function Writer registers has run are dropped.
// Cleanup functions run last registered first, so those registered after
// Writer (closing what logs to it, say) still log.
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type writer struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
