package fsm

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestPebbleLogger: the state's Pebble store reports through
// Config.Logger, informational messages at Debug and errors at Error, and
// a fatal error is logged and then panics as before.
func TestPebbleLogger(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := Open(t.TempDir(), Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "component=fsm/pebble") {
		t.Errorf("opening and closing the state logged no Pebble message at Debug:\n%s", buf.String())
	}

	buf.Reset()
	p := pebbleLogger(slog.New(slog.NewTextHandler(&buf, nil))) // Info and above
	p.Infof("flushed %d", 1)
	if buf.Len() != 0 {
		t.Errorf("an informational message reached an Info logger: %s", buf.String())
	}
	p.Errorf("background error: %s", "disk full")
	if got := buf.String(); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, `msg="background error: disk full"`) || !strings.Contains(got, "component=fsm/pebble") {
		t.Errorf("Errorf logged %q", got)
	}
	buf.Reset()
	defer func() {
		r := recover()
		if r != "fsm: pebble: corrupt 7" {
			t.Errorf("Fatalf panicked with %v", r)
		}
		if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "corrupt 7") {
			t.Errorf("Fatalf logged %q", buf.String())
		}
	}()
	p.Fatalf("corrupt %d", 7)
}
