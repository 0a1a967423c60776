package cuda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/devicetest"
	"github.com/truegpu/truegpu/prover"
)

// Without NVIDIA's driver, Open fails with ErrNoDriver and says what to do.
func TestOpenWithoutDriver(t *testing.T) {
	_, err := Open(Options{LibraryPath: "/nonexistent/libcuda.so.1"})
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("Open with a missing library: %v, want ErrNoDriver", err)
	}
	if !strings.Contains(err.Error(), "--device cpu") {
		t.Errorf("error %q does not offer the CPU backend", err)
	}
	if _, err := Count(Options{LibraryPath: "/nonexistent/libcuda.so.1"}); !errors.Is(err, ErrNoDriver) {
		t.Fatalf("Count with a missing library: %v, want ErrNoDriver", err)
	}
	// A library that exists but is not the CUDA driver.
	libc := "libc.so.6"
	if _, err := Open(Options{LibraryPath: libc}); !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "cuInit") {
		t.Fatalf("Open(%s): %v, want ErrNoDriver naming the missing cuInit", libc, err)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		code int
		want error
		msg  string
	}{
		{cudaErrorNoDevice, attest.ErrNoDevice, ""},
		{cudaErrorInvalidDevice, attest.ErrNoDevice, ""},
		{cudaErrorOutOfMemory, ErrOutOfMemory, ""},
		{cudaErrorInvalidPTX, ErrKernelLoad, "update the NVIDIA driver"},
		{cudaErrorUnsupportedPTX, ErrKernelLoad, "CUDA 11+"},
		{cudaErrorNoBinaryForGPU, ErrKernelLoad, "sm_80"},
		{cudaErrorIllegalAddress, ErrDeviceFault, ""},
		{cudaErrorLaunchFailed, ErrDeviceFault, ""},
		{999, ErrDriver, "CUDA error 999"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			err := newError("cuTest", tc.code, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("code %d maps to %v, want %v", tc.code, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "cuTest") {
				t.Errorf("error %q lacks %q or the operation", err, tc.msg)
			}
		})
	}
}

func TestFormatUUID(t *testing.T) {
	var u [16]byte
	for i := range u {
		u[i] = byte(i * 17)
	}
	if got, want := formatUUID(u), "GPU-00112233-4455-6677-8899-aabbccddeeff"; got != want {
		t.Fatalf("formatUUID = %s, want %s", got, want)
	}
}

func TestEmbeddedPTX(t *testing.T) {
	for _, name := range []string{kernelPRG, kernelGEMM, kernelLeaves, kernelMerkle} {
		if !strings.Contains(ptx, ".entry "+name+"(") {
			t.Errorf("embedded PTX has no entry %s", name)
		}
	}
	if !strings.Contains(ptx, ".target sm_80") {
		t.Error("embedded PTX does not target sm_80")
	}
	if got := len(roundKeys()); got != 62 {
		t.Fatalf("%d round keys, kernels expect 62 (P2_NRK)", got)
	}
}

// The committed PTX must be what gen.sh produces from the committed source.
func TestPTXUpToDate(t *testing.T) {
	clang, err := exec.LookPath("clang++-14")
	if err != nil {
		t.Skip("clang++-14 not installed; cannot regenerate the PTX")
	}
	out := filepath.Join(t.TempDir(), "k.ptx")
	cmd := exec.Command(clang, "-x", "cuda", "--cuda-device-only", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
		"-O3", "-S", "-o", out, "truegpu.cu")
	cmd.Dir = "kernels"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != ptx {
		t.Fatal("kernels/truegpu.ptx is stale: run kernels/gen.sh and commit the result")
	}
}

// buildHarness compiles kernels/hosttest.c, which runs the kernels' exact
// arithmetic (field.h, work.h) on the CPU.
func buildHarness(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed; cannot check the kernel arithmetic on the host")
	}
	bin := filepath.Join(t.TempDir(), "hosttest")
	cmd := exec.Command(cc, "-O2", "-std=c11", "-Wall", "-Werror", "-o", bin, "hosttest.c")
	cmd.Dir = "kernels"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return bin
}

func writeFE(b *bytes.Buffer, e fr.Element) {
	fmt.Fprintf(b, "%016x %016x %016x %016x\n", e[0], e[1], e[2], e[3])
}

func parseFE(t *testing.T, line string) fr.Element {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 4 {
		t.Fatalf("bad element line %q", line)
	}
	var e fr.Element
	for i := range 4 {
		v, err := strconv.ParseUint(f[i], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		e[i] = v
	}
	return e
}

func runHarness(t *testing.T, bin string, input *bytes.Buffer) []string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Stdin = input
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hosttest: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func harnessInput(cmd string) *bytes.Buffer {
	var b bytes.Buffer
	for _, k := range roundKeys() {
		writeFE(&b, k)
	}
	b.WriteString(cmd + "\n")
	return &b
}

// The kernels' Poseidon2 compression equals gnark-crypto's, including
// edge values (0, 1, r-1) that exercise every carry and reduction.
func TestKernelCompressMatchesGnark(t *testing.T) {
	bin := buildHarness(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var pairs [][2]fr.Element
	var minus1 fr.Element
	minus1.SetInt64(-1)
	edges := []fr.Element{{}, fr.One(), minus1}
	for _, a := range edges {
		for _, b := range edges {
			pairs = append(pairs, [2]fr.Element{a, b})
		}
	}
	for range 64 {
		var a, b fr.Element
		a.SetUint64(rng.Uint64())
		a.Mul(&a, &a).Mul(&a, &a)
		b.SetUint64(rng.Uint64())
		b.Mul(&b, &a)
		pairs = append(pairs, [2]fr.Element{a, b})
	}
	in := harnessInput(fmt.Sprintf("compress %d", len(pairs)))
	for _, p := range pairs {
		writeFE(in, p[0])
		writeFE(in, p[1])
	}
	lines := runHarness(t, bin, in)
	if len(lines) != len(pairs) {
		t.Fatalf("harness printed %d lines for %d pairs", len(lines), len(pairs))
	}
	perm := poseidon2.NewPermutation(prover.Poseidon2Width, prover.Poseidon2FullRounds, prover.Poseidon2PartialRounds)
	for i, p := range pairs {
		x := [2]fr.Element{p[0], p[1]}
		if err := perm.Permutation(x[:]); err != nil {
			t.Fatal(err)
		}
		var want fr.Element
		want.Add(&x[1], &p[1])
		if got := parseFE(t, lines[i]); !got.Equal(&want) {
			t.Fatalf("pair %d: kernel H = %v, gnark-crypto %v", i, got.String(), want.String())
		}
	}
}

// The kernels' PRG, GEMM, leaf packing and Merkle tree reproduce the
// reference commitment of package prover bit for bit.
func TestKernelCommitMatchesReference(t *testing.T) {
	bin := buildHarness(t)
	for _, name := range []string{"test", "demo"} {
		t.Run(name, func(t *testing.T) {
			p, err := prover.ProfileByName(name)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				nonce := devicetest.Nonce(i)
				var seed fr.Element
				sb := prover.Seed(p, nonce)
				seed.SetBytes(sb[:])
				in := harnessInput(fmt.Sprintf("commit %d %d %d", p.M, p.N, p.K))
				writeFE(in, seed)
				lines := runHarness(t, bin, in)
				if len(lines) != p.Cells()+1 {
					t.Fatalf("harness printed %d lines, want %d", len(lines), p.Cells()+1)
				}
				want := prover.Compute(p, nonce)
				for c, w := range want {
					if got, _ := strconv.Atoi(lines[c]); int32(got) != w {
						t.Fatalf("nonce %d: cell %d = %s, reference %d", i, c, lines[c], w)
					}
				}
				tree, err := prover.NewTree(p, want)
				if err != nil {
					t.Fatal(err)
				}
				root := parseFE(t, lines[len(lines)-1])
				if root.Bytes() != tree.Root() {
					t.Fatalf("nonce %d: kernel root %x, reference %x", i, root.Bytes(), tree.Root())
				}
			}
		})
	}
}

// On a machine with an NVIDIA driver and GPU, the CUDA device must pass
// the conformance suite; elsewhere the test is skipped.
func TestConformance(t *testing.T) {
	if n, err := Count(Options{}); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v, %d devices)", err, n)
	}
	devicetest.Run(t, func(t *testing.T) attest.Device {
		d, err := Open(Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, devicetest.Config{})
}

func BenchmarkRun(b *testing.B) {
	if n, err := Count(Options{}); err != nil || n == 0 {
		b.Skipf("no CUDA device (%v)", err)
	}
	d, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	p, _ := prover.ProfileByName("standard")
	i := 0
	for b.Loop() {
		i++
		if _, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(i)}); err != nil {
			b.Fatal(err)
		}
	}
}
