package oracle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// RaftLogger returns an hclog.Logger, the logger hashicorp/raft and its
// transports take, that writes into l: Raft's messages go through the
// member's own slog handler with its attributes (e.g. member=m1), their
// key-value pairs become slog attributes, and the handler's level decides
// what is written. Loggers derived with Named add a "raft" component
// path, e.g. component=raft.transport.
func RaftLogger(l *slog.Logger) hclog.Logger {
	b := &hclogBridge{l: l, name: "raft"}
	b.level = new(atomic.Int32)
	b.level.Store(int32(hclog.Trace))
	return b
}

type hclogBridge struct {
	l       *slog.Logger
	name    string
	implied []any
	level   *atomic.Int32 // shared by derived loggers, as in hclog
}

var _ hclog.Logger = (*hclogBridge)(nil)

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (b *hclogBridge) enabled(l hclog.Level) bool {
	if l == hclog.Off || l < hclog.Level(b.level.Load()) {
		return false
	}
	return b.l.Enabled(context.Background(), slogLevel(l))
}

func (b *hclogBridge) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel || level == hclog.DefaultLevel {
		level = hclog.Info
	}
	if !b.enabled(level) {
		return
	}
	attrs := make([]any, 0, 2+len(b.implied)+len(args))
	attrs = append(attrs, "component", b.name)
	attrs = append(attrs, b.implied...)
	for _, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				a = fmt.Sprintf(format, f[1:]...)
			}
		}
		attrs = append(attrs, a)
	}
	b.l.Log(context.Background(), slogLevel(level), msg, attrs...)
}

func (b *hclogBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *hclogBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *hclogBridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *hclogBridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *hclogBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }
func (b *hclogBridge) IsTrace() bool                 { return b.enabled(hclog.Trace) }
func (b *hclogBridge) IsDebug() bool                 { return b.enabled(hclog.Debug) }
func (b *hclogBridge) IsInfo() bool                  { return b.enabled(hclog.Info) }
func (b *hclogBridge) IsWarn() bool                  { return b.enabled(hclog.Warn) }
func (b *hclogBridge) IsError() bool                 { return b.enabled(hclog.Error) }
func (b *hclogBridge) ImpliedArgs() []any            { return b.implied }
func (b *hclogBridge) Name() string                  { return b.name }
func (b *hclogBridge) SetLevel(l hclog.Level)        { b.level.Store(int32(l)) }
func (b *hclogBridge) GetLevel() hclog.Level         { return hclog.Level(b.level.Load()) }

func (b *hclogBridge) With(args ...any) hclog.Logger {
	c := *b
	c.implied = append(append([]any(nil), b.implied...), args...)
	return &c
}

func (b *hclogBridge) Named(name string) hclog.Logger {
	c := *b
	c.name = b.name + "." + name
	return &c
}

func (b *hclogBridge) ResetNamed(name string) hclog.Logger {
	c := *b
	c.name = name
	return &c
}

func (b *hclogBridge) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(opts), "", 0)
}

// StandardWriter logs each line written to it, at opts.ForceLevel or, when
// unset, at the level its "[ERROR]"-style prefix names (Info without one).
func (b *hclogBridge) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	force := hclog.NoLevel
	if opts != nil {
		force = opts.ForceLevel
	}
	return &bridgeWriter{b: b, force: force}
}

type bridgeWriter struct {
	b     *hclogBridge
	force hclog.Level
}

func (w *bridgeWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg := strings.TrimSpace(string(line))
		level := w.force
		if level == hclog.NoLevel {
			level = hclog.Info
			for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
				prefix := "[" + strings.ToUpper(l.String()) + "]"
				if rest, ok := strings.CutPrefix(msg, prefix); ok {
					level, msg = l, strings.TrimSpace(rest)
					break
				}
			}
		}
		w.b.Log(level, msg)
	}
	return len(p), nil
}
