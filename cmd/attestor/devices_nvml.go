package main

import (
	"context"
	"fmt"
	"os"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/cpu"
	"github.com/truegpu/truegpu/attest/cuda"
	"github.com/truegpu/truegpu/attest/nvml"
)

// openNVML opens the selected GPUs with NVML identities, each paired with
// an executor (CUDA, or the CPU reference).
func openNVML(f *deviceFlags) ([]attest.Device, func(), error) {
	// NVML enumerates GPUs by PCI bus id; make CUDA agree.
	if os.Getenv("CUDA_DEVICE_ORDER") == "" {
		os.Setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
	}
	lib, err := nvml.Open(nvml.Options{})
	if err != nil {
		return nil, nil, err
	}
	n, err := lib.Count()
	if err != nil {
		lib.Close()
		return nil, nil, err
	}
	idx, err := parseGPUs(f.gpus, n)
	if err != nil {
		lib.Close()
		return nil, nil, err
	}
	var out []attest.Device
	fail := func(err error) ([]attest.Device, func(), error) {
		for _, d := range out {
			d.Close()
		}
		lib.Close()
		return nil, nil, err
	}
	for _, i := range idx {
		id, err := lib.Device(i)
		if err != nil {
			return fail(err)
		}
		var ex attest.Executor
		switch f.executor {
		case "cuda":
			d, err := cuda.Open(cuda.Options{Ordinal: i})
			if err != nil {
				return fail(fmt.Errorf("GPU %d: %w (or run with --executor cpu)", i, err))
			}
			nf, err1 := id.Fingerprint(context.Background())
			cf, err2 := d.Fingerprint(context.Background())
			if err1 != nil || err2 != nil || nf.UUID != cf.UUID {
				d.Close()
				return fail(fmt.Errorf("GPU %d: NVML reports %s but CUDA device %d is %s (%v, %v); set CUDA_DEVICE_ORDER=PCI_BUS_ID",
					i, nf.UUID, i, cf.UUID, err1, err2))
			}
			ex = d
		case "cpu":
			ex = cpu.New(cpu.Options{})
		default:
			return fail(usageError("--executor %q: use cuda or cpu", f.executor))
		}
		out = append(out, attest.Combine(id, ex))
	}
	return out, func() { lib.Close() }, nil
}
