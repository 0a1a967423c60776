package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] != nil {
				t.Errorf("%s:%d: section [%s] repeated", path, n, section)
			}
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.TrimSpace(k) == "" {
				t.Errorf("%s:%d: not a key=value line inside a section: %q", path, n, line)
				continue
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 || v[0] == "" {
		t.Errorf("[%s] %s: want exactly one non-empty value, have %q", section, key, v)
		return ""
	}
	return v[0]
}

var units = map[string]string{ // file -> binary its ExecStart runs
	"systemd/truegpu-oracled@.service": "/usr/local/bin/oracled",
	"systemd/truegpu-attestor.service": "/usr/local/bin/attestor",
}

// TestSystemdUnits checks the unit files' shape (sections, the binary,
// an unprivileged user, restarts, an install target) and, where
// systemd-analyze is installed, has systemd verify them: any warning
// fails the test. The ExecStart binaries are replaced by an executable
// that exists here, since verify checks that they do; the template is
// verified as an instance.
func TestSystemdUnits(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var verify []string
	for file, bin := range units {
		u := parseUnit(t, file)
		u.one(t, "Unit", "Description")
		execStart := u.one(t, "Service", "ExecStart")
		if f := strings.Fields(execStart); len(f) == 0 || f[0] != bin {
			t.Errorf("%s: ExecStart %q does not run %s", file, execStart, bin)
		}
		if user := u.one(t, "Service", "User"); user == "root" {
			t.Errorf("%s runs as root", file)
		}
		u.one(t, "Service", "Restart")
		u.one(t, "Service", "EnvironmentFile")
		if u.one(t, "Install", "WantedBy") != "multi-user.target" {
			t.Errorf("%s: WantedBy is not multi-user.target", file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		if strings.HasSuffix(name, "@.service") {
			name = strings.TrimSuffix(name, "@.service") + "@member-1.service"
		}
		out := filepath.Join(dir, name)
		if err := os.WriteFile(out, []byte(strings.ReplaceAll(string(b), bin, self)), 0o644); err != nil {
			t.Fatal(err)
		}
		verify = append(verify, out)
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed; checked the units' shape only")
		return
	}
	cmd := exec.Command(sa, append([]string{"verify"}, verify...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
