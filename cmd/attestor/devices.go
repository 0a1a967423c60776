package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/cpu"
	"github.com/truegpu/truegpu/attest/cuda"
	"github.com/truegpu/truegpu/attest/sim"
)

// deviceFlags select and configure the node's devices.
type deviceFlags struct {
	spec      string
	gpus      string
	class     string
	executor  string
	simSeed   string
	timeScale float64
}

func (d *deviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.spec, "device", "cpu", "device backend: nvml, cuda, cpu or sim:<profile> (profiles: "+strings.Join(sim.Kinds(), ", ")+")")
	fs.StringVar(&d.gpus, "gpus", "all", "GPU indices for nvml and cuda: all, or a comma-separated list such as 0,2")
	fs.StringVar(&d.class, "class", "", "claimed GPU class for every device (default: from the device's product name)")
	fs.StringVar(&d.executor, "executor", "cuda", "what runs workloads for --device nvml: cuda, or cpu (reference implementation; misses GPU-class deadlines)")
	fs.StringVar(&d.simSeed, "sim-seed", "", "identity seed of simulated devices (default: the node address; equal seeds give equal fingerprints)")
	fs.Float64Var(&d.timeScale, "time-scale", 1, "multiplier of simulated devices' modelled run time")
}

// openDevices opens the devices the flags select. seed is the default
// identity seed of simulated devices.
func openDevices(f *deviceFlags, seed string) ([]attest.AgentDevice, func(), error) {
	var devs []attest.AgentDevice
	closeAll := func() {
		for _, d := range devs {
			_ = d.Device.Close()
		}
	}
	add := func(d attest.Device) {
		devs = append(devs, attest.AgentDevice{Device: d, Class: f.class, Prove: sim.ProveHook(d)})
	}
	kind, arg, _ := strings.Cut(f.spec, ":")
	switch kind {
	case "cpu":
		add(cpu.New(cpu.Options{}))
	case "sim":
		if arg == "" {
			return nil, nil, usageError("--device sim needs a profile, e.g. sim:h100 (profiles: %s)", strings.Join(sim.Kinds(), ", "))
		}
		if f.simSeed != "" {
			seed = f.simSeed
		}
		d, err := sim.New(arg, sim.Options{Seed: []byte(seed), TimeScale: f.timeScale})
		if err != nil {
			return nil, nil, err
		}
		add(d)
	case "cuda":
		n, err := cuda.Count(cuda.Options{})
		if err != nil {
			return nil, nil, err
		}
		idx, err := parseGPUs(f.gpus, n)
		if err != nil {
			return nil, nil, err
		}
		for _, i := range idx {
			d, err := cuda.Open(cuda.Options{Ordinal: i})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("CUDA device %d: %w", i, err)
			}
			add(d)
		}
	case "nvml":
		ds, closeLib, err := openNVML(f)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range ds {
			add(d)
		}
		inner := closeAll
		closeAll = func() { inner(); closeLib() }
	default:
		return nil, nil, usageError("unknown --device %q: use nvml, cuda, cpu or sim:<profile>", f.spec)
	}
	if len(devs) == 0 {
		return nil, nil, fmt.Errorf("%w: --device %s --gpus %s selects no device", attest.ErrNoDevice, f.spec, f.gpus)
	}
	return devs, closeAll, nil
}

// parseGPUs parses --gpus against n devices.
func parseGPUs(s string, n int) ([]int, error) {
	if s == "" || s == "all" {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || i < 0 {
			return nil, usageError("--gpus %q: %q is not a GPU index", s, p)
		}
		if i >= n {
			return nil, fmt.Errorf("%w: GPU %d, this machine has %d", attest.ErrNoDevice, i, n)
		}
		out = append(out, i)
	}
	return out, nil
}
