package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/fsm"
)

// The fault hooks are refused without -unsafe-dev-keys, hidden from -h,
// and with it the clock follows the file.
func TestDevFaultFlags(t *testing.T) {
	fs := flag.NewFlagSet("oracled", flag.ContinueOnError)
	fs.String("node-id", "", "Raft server id")
	d := devFaultFlags(fs)
	clock := filepath.Join(t.TempDir(), "clock")
	if err := fs.Parse([]string{"-unsafe-clock-file", clock}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cfg oracle.Config
	if err := d.apply(ctx, &cfg, false, io.Discard); err == nil || !strings.Contains(err.Error(), "-unsafe-dev-keys") {
		t.Fatalf("without -unsafe-dev-keys: %v, want a refusal naming it", err)
	}
	if cfg.Now != nil {
		t.Fatal("a refused hook changed the clock")
	}
	var usage strings.Builder
	fs.SetOutput(&usage)
	printVisibleDefaults(fs)
	if !strings.Contains(usage.String(), "-node-id") || strings.Contains(usage.String(), "unsafe-") {
		t.Fatalf("usage shows hidden flags or lost visible ones:\n%s", usage.String())
	}
	if err := os.WriteFile(clock, []byte("5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.apply(ctx, &cfg, true, io.Discard); err != nil {
		t.Fatal(err)
	}
	if off := time.Until(cfg.Now()); off < 4900*time.Millisecond || off > 5100*time.Millisecond {
		t.Fatalf("clock offset %v, want 5s", off)
	}
	if err := os.WriteFile(clock, []byte("-2000"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Until(cfg.Now()) > -1900*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if off := time.Until(cfg.Now()); off > -1900*time.Millisecond || off < -2100*time.Millisecond {
		t.Fatalf("clock offset %v after the file changed, want -2s", off)
	}
}

// TestHoldRestore: a restore holds only at the stage the file names,
// announces the hold with PATH.held, and goes on once the file is gone.
func TestHoldRestore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hold")
	// No file, or another stage: no hold.
	holdRestore(path, fsm.RestoreStarted, io.Discard)
	if err := os.WriteFile(path, []byte("tables-written\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	holdRestore(path, fsm.RestoreStarted, io.Discard)
	if _, err := os.Stat(path + ".held"); err == nil {
		t.Fatal("held at a stage the file does not name")
	}
	done := make(chan struct{})
	go func() {
		holdRestore(path, fsm.RestoreTablesWritten, io.Discard)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path + ".held"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no .held file at the named stage")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("the restore went on while the file exists")
	case <-time.After(100 * time.Millisecond):
	}
	os.Remove(path)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the restore still held after the file was removed")
	}
	if _, err := os.Stat(path + ".held"); err == nil {
		t.Fatal(".held left behind after the release")
	}
}
