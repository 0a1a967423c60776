package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdEnvironment checks that every TRUEGPU_ variable in the
// member unit and its example environment file under deploy/systemd names
// an oracled flag (oracled reads TRUEGPU_<FLAG> for each flag).
func TestSystemdEnvironment(t *testing.T) {
	flags := memberFlags(t)
	var text []byte
	for _, f := range []string{"../../deploy/systemd/truegpu-oracled@.service", "../../deploy/systemd/oracled.env.example"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text = append(text, b...)
	}
	seen := 0
	for _, m := range regexp.MustCompile(`(?m)^#?\s*(?:Environment=)?TRUEGPU_(\w+)=`).FindAllSubmatch(text, -1) {
		seen++
		name := strings.ToLower(strings.ReplaceAll(string(m[1]), "_", "-"))
		if !flags[name] {
			t.Errorf("TRUEGPU_%s names no oracled flag (-%s)", m[1], name)
		}
	}
	if seen < 5 {
		t.Errorf("found only %d TRUEGPU_ variables", seen)
	}
}

// memberFlags returns the names of the member flags, from `oracled -h`.
func memberFlags(t *testing.T) map[string]bool {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, r); close(done) }()
	err = runMember(context.Background(), []string{"-h"})
	os.Stderr = stderr
	w.Close()
	<-done
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("oracled -h: %v", err)
	}
	flags := map[string]bool{}
	sc := bufio.NewScanner(&out)
	re := regexp.MustCompile(`^  -([\w-]+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
	}
	if !flags["node-id"] || !flags["tls-cert"] {
		t.Fatalf("could not read the flags from oracled -h:\n%s", out.String())
	}
	return flags
}
