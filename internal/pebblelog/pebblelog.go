// Package pebblelog passes what a Pebble store reports to a slog.Logger:
// informational messages (flushes, compactions) at Debug, errors at Error,
// and a fatal error logged at Error and then raised as a panic.
package pebblelog

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger implements pebble.Logger over a slog.Logger.
type Logger struct {
	// L receives the messages.
	L *slog.Logger
	// Component is the messages' "component" attribute (e.g. "fsm/pebble").
	Component string
	// FatalPrefix begins the panic message of Fatalf.
	FatalPrefix string
}

func (p Logger) log(level slog.Level, msg string) {
	p.L.Log(context.Background(), level, msg, "component", p.Component)
}

// Infof logs at Debug; the message is not formatted when Debug is off
// (Pebble reports every flush and compaction).
func (p Logger) Infof(format string, args ...any) {
	if p.L.Enabled(context.Background(), slog.LevelDebug) {
		p.log(slog.LevelDebug, fmt.Sprintf(format, args...))
	}
}

// Errorf logs at Error.
func (p Logger) Errorf(format string, args ...any) {
	p.log(slog.LevelError, fmt.Sprintf(format, args...))
}

// Fatalf logs at Error and panics: Pebble calls it only for unrecoverable
// internal inconsistencies, after which writing more could corrupt the
// store.
func (p Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.log(slog.LevelError, msg)
	panic(p.FatalPrefix + msg)
}
