package cuda

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/devicetest"
	"github.com/truegpu/truegpu/prover"
)

var (
	fakeOnce sync.Once
	fakePath string
	fakeErr  error
)

// fakeDriver builds kernels/fakecuda.c, a stand-in libcuda that runs the
// kernel bodies on the host (see its header comment).
func fakeDriver(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed; cannot build the fake CUDA driver")
	}
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakecuda")
		if err != nil {
			fakeErr = err
			return
		}
		fakePath = filepath.Join(dir, "libfakecuda.so")
		cmd := exec.Command(cc, "-O2", "-shared", "-fPIC", "-Wall", "-Werror", "-o", fakePath, "fakecuda.c")
		cmd.Dir = "kernels"
		if b, err := cmd.CombinedOutput(); err != nil {
			fakeErr = errors.New(string(b))
		}
	})
	if fakeErr != nil {
		t.Fatalf("build fake driver: %v", fakeErr)
	}
	return fakePath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakePath != "" {
		os.RemoveAll(filepath.Dir(fakePath))
	}
	os.Exit(code)
}

func fakeCounter(t *testing.T, lib, name string) func() int64 {
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Fatal(err)
	}
	var f func() int64
	purego.RegisterLibFunc(&f, h, name)
	return f
}

// The CUDA backend's host side - driver binding, kernel arguments, grids,
// buffers, copies - passes the conformance suite on the fake driver, and
// frees every allocation.
func TestConformanceOnFakeDriver(t *testing.T) {
	lib := fakeDriver(t)
	live := fakeCounter(t, lib, "fakecuda_live_allocations")
	launches := fakeCounter(t, lib, "fakecuda_launches")
	devicetest.Run(t, func(t *testing.T) attest.Device {
		d, err := Open(Options{LibraryPath: lib})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, devicetest.Config{})
	if n := live(); n != 0 {
		t.Errorf("%d device allocations leaked", n)
	}
	if launches() == 0 {
		t.Error("no kernel was launched")
	}
}

func TestFakeDriverDemoProfile(t *testing.T) {
	lib := fakeDriver(t)
	d, err := Open(Options{LibraryPath: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, _ := prover.ProfileByName("demo")
	n := devicetest.Nonce(7)
	c, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: n})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := prover.NewTree(p, prover.Compute(p, n))
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != tree.Root() {
		t.Fatalf("root %x, reference %x", c.Root, tree.Root())
	}
}

func TestFakeDriverFingerprint(t *testing.T) {
	lib := fakeDriver(t)
	d, err := Open(Options{LibraryPath: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fp, err := d.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := attest.Fingerprint{
		UUID: "GPU-a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf", Name: "Fake NVIDIA H100 80GB HBM3", PCIBusID: "00000000:18:00.0",
		MemoryTotalBytes: 85520809984, CUDADriverVersion: 12040, ComputeCapabilityMajor: 9, MaxSMClockMHz: 1980, MaxMemoryClockMHz: 2619,
		Unsupported: fp.Unsupported,
	}
	if !fp.Equal(want) {
		t.Fatalf("fingerprint\n got %+v\nwant %+v", fp, want)
	}
}

func TestFakeDriverFailures(t *testing.T) {
	lib := fakeDriver(t)
	tests := []struct {
		name string
		env  string
		opts Options
		run  bool
		want error
	}{
		{"no device", "FAKECUDA_DEVICES=0", Options{}, false, attest.ErrNoDevice},
		{"ordinal out of range", "", Options{Ordinal: 3}, false, attest.ErrNoDevice},
		{"PTX rejected", "FAKECUDA_BAD_PTX=1", Options{}, false, ErrKernelLoad},
		{"out of memory", "FAKECUDA_FAIL_ALLOC=1", Options{}, true, ErrOutOfMemory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(k, v)
			}
			tc.opts.LibraryPath = lib
			d, err := Open(tc.opts)
			if tc.run {
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				p, _ := prover.ProfileByName("test")
				_, err = d.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(1)})
			} else if err == nil {
				d.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}
