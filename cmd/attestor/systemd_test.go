package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdUnitFlags checks that the attestor unit under deploy/systemd
// runs `attestor run` with flags it accepts, and that every variable the
// unit expands is set in the example environment file.
func TestSystemdUnitFlags(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/truegpu-attestor.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("the unit has no ExecStart")
	}
	args := strings.Fields(m[1])
	if len(args) < 2 || args[1] != "run" {
		t.Fatalf("ExecStart %q does not run 'attestor run'", m[1])
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	commands["run"].Flags(fs)
	for _, a := range args[2:] {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
			if fs.Lookup(name) == nil {
				t.Errorf("attestor run has no flag -%s (ExecStart %q)", name, m[1])
			}
		}
	}
	env, err := os.ReadFile("../../deploy/systemd/attestor.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(m[1], -1) {
		if !regexp.MustCompile(`(?m)^` + v[1] + `=\S`).Match(env) {
			t.Errorf("ExecStart uses ${%s}, which attestor.env.example does not set", v[1])
		}
	}
}
