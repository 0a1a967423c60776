package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNewestSnapshotReadsRaftNames(t *testing.T) {
	m := &Member{DataDir: t.TempDir()}
	if got := newestSnapshot(m); got != 0 {
		t.Fatalf("no snapshots: %d", got)
	}
	dir := filepath.Join(m.DataDir, "snapshots", "snapshots")
	for _, name := range []string{"2-159-1796036977746", "3-310-1796036980710", "3-900-1796036980999.tmp", "junk"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if got := newestSnapshot(m); got != 310 {
		t.Fatalf("newest complete snapshot %d, want 310 (an unfinished .tmp one does not count)", got)
	}
}

func TestSetClockWritesMilliseconds(t *testing.T) {
	m := &Member{ClockFile: filepath.Join(t.TempDir(), "m0.clock")}
	for _, d := range []time.Duration{-6258 * time.Millisecond, 0, 1500 * time.Microsecond} {
		if err := setClock(m, d); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(m.ClockFile)
		if want := map[time.Duration]string{-6258 * time.Millisecond: "-6258", 0: "0", 1500 * time.Microsecond: "1"}[d]; string(b) != want {
			t.Errorf("offset %v written as %q, want %q", d, b, want)
		}
	}
}

func TestRestoreDirs(t *testing.T) {
	m := &Member{DataDir: t.TempDir()}
	state := filepath.Join(m.DataDir, "state")
	os.MkdirAll(filepath.Join(state, "restore-123"), 0o700)
	os.WriteFile(filepath.Join(state, "MANIFEST-000001"), nil, 0o600)
	if got := restoreDirs(m); len(got) != 1 || !got["restore-123"] {
		t.Fatalf("restore dirs %v", got)
	}
}

// disk-full sets the file size limit of another running process, and
// never of the harness itself.
func TestSetFileSizeLimit(t *testing.T) {
	if err := setFileSizeLimit(0, 0); err == nil {
		t.Fatal("pid 0 (the caller) accepted")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	limit := func() string {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "limits"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max file size") {
				return strings.Fields(strings.TrimPrefix(line, "Max file size"))[0]
			}
		}
		t.Fatal("no file size line in /proc/pid/limits")
		return ""
	}
	if err := setFileSizeLimit(cmd.Process.Pid, 0); err != nil {
		t.Fatal(err)
	}
	if got := limit(); got != "0" {
		t.Fatalf("soft limit %s after setting 0", got)
	}
	if err := setFileSizeLimit(cmd.Process.Pid, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if got := limit(); got == "0" {
		t.Fatal("limit not lifted")
	}
}
