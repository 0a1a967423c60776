package cpu_test

import (
	"context"
	"testing"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/cpu"
	"github.com/truegpu/truegpu/attest/devicetest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
)

func TestConformance(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) attest.Device {
		return cpu.New(cpu.Options{Seed: []byte(t.Name())})
	}, devicetest.Config{})
}

func TestFingerprint(t *testing.T) {
	a := cpu.New(cpu.Options{Seed: []byte("a")})
	b := cpu.New(cpu.Options{Seed: []byte("b")})
	host := cpu.New(cpu.Options{})
	ctx := context.Background()
	fa, _ := a.Fingerprint(ctx)
	fb, _ := b.Fingerprint(ctx)
	fh, _ := host.Fingerprint(ctx)
	if fa.UUID == fb.UUID {
		t.Fatalf("different seeds gave the same UUID %s", fa.UUID)
	}
	if fa2, _ := cpu.New(cpu.Options{Seed: []byte("a")}).Fingerprint(ctx); fa2.UUID != fa.UUID {
		t.Fatalf("same seed gave UUIDs %s and %s", fa.UUID, fa2.UUID)
	}
	if len(fh.UUID) != len("CPU-00000000-0000-0000-0000-000000000000") || fh.UUID[:4] != "CPU-" {
		t.Fatalf("host UUID %q is not CPU-<uuid>", fh.UUID)
	}
	if a.ClaimedClass() != gpuclass.CPU {
		t.Fatalf("ClaimedClass = %q", a.ClaimedClass())
	}
}

func BenchmarkRun(b *testing.B) {
	for _, name := range []string{"test", "demo"} {
		p, err := prover.ProfileByName(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			d := cpu.New(cpu.Options{Seed: []byte("bench")})
			i := 0
			for b.Loop() {
				i++
				var n prover.Nonce
				n[0], n[1] = byte(i), byte(i>>8)
				if _, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: n}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
