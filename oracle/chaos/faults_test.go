package chaos

import (
	"os"
	"path/filepath"
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
