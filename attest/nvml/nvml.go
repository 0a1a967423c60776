//go:build cgo

package nvml

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/truegpu/truegpu/attest"
)

// wrap converts a library return code into an error; SUCCESS is nil.
func wrap(op, device string, r gonvml.Return) error {
	var kind error
	switch r {
	case gonvml.SUCCESS:
		return nil
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		kind = ErrLibraryNotFound
	case gonvml.ERROR_DRIVER_NOT_LOADED:
		kind = ErrDriverNotLoaded
	case gonvml.ERROR_GPU_IS_LOST:
		kind = ErrDeviceLost
	case gonvml.ERROR_NOT_SUPPORTED, gonvml.ERROR_FUNCTION_NOT_FOUND:
		kind = ErrNotSupported
	case gonvml.ERROR_NO_PERMISSION:
		kind = ErrNoPermission
	case gonvml.ERROR_UNINITIALIZED:
		kind = attest.ErrClosed
	default:
		kind = ErrLibrary
	}
	return &Error{Op: op, Device: device, Code: int(r), Msg: returnString(r), kind: kind}
}

// returnString describes a return code without calling into the library
// (which may not be loaded).
func returnString(r gonvml.Return) string {
	switch r {
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		return "libnvidia-ml.so.1 not found; install the NVIDIA driver, or run the attestor with --device cpu"
	case gonvml.ERROR_DRIVER_NOT_LOADED:
		return "the NVIDIA kernel module is not loaded; check `nvidia-smi` and dmesg"
	case gonvml.ERROR_GPU_IS_LOST:
		return "the GPU is lost; reset it (nvidia-smi -r) or reboot"
	case gonvml.ERROR_NOT_SUPPORTED:
		return "not supported by this device or driver"
	case gonvml.ERROR_FUNCTION_NOT_FOUND:
		return "the driver's NVML is too old to provide this call"
	case gonvml.ERROR_NO_PERMISSION:
		return "permission denied; run as a user allowed to query the GPU"
	case gonvml.ERROR_UNINITIALIZED:
		return "NVML is not initialized (library closed)"
	case gonvml.ERROR_INVALID_ARGUMENT:
		return "invalid argument"
	case gonvml.ERROR_TIMEOUT:
		return "timed out"
	default:
		return fmt.Sprintf("NVML error %d", int(r))
	}
}

// Library is an initialized NVML library. It is safe for concurrent use.
// Close shuts NVML down; devices opened from it fail with attest.ErrClosed
// afterwards.
type Library struct {
	lib gonvml.Interface

	mu     sync.RWMutex
	closed bool
}

// Open loads and initializes NVIDIA's management library. Without the
// library it returns an error wrapping ErrLibraryNotFound whose message
// says how to proceed (install the driver or use the CPU backend).
func Open(opts Options) (*Library, error) {
	var lopts []gonvml.LibraryOption
	if opts.LibraryPath != "" {
		lopts = append(lopts, gonvml.WithLibraryPath(opts.LibraryPath))
	}
	return openInterface(gonvml.New(lopts...))
}

func openInterface(lib gonvml.Interface) (l *Library, err error) {
	if r := lib.Init(); r != gonvml.SUCCESS {
		return nil, wrap("nvmlInit", "", r)
	}
	return &Library{lib: lib}, nil
}

// Close shuts NVML down. It is idempotent.
func (l *Library) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return wrap("nvmlShutdown", "", l.lib.Shutdown())
}

// use runs f with the library held open, or returns ErrClosed.
func (l *Library) use(f func() error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("nvml: library closed: %w", attest.ErrClosed)
	}
	return f()
}

// Count returns the number of GPUs the driver reports.
func (l *Library) Count() (int, error) {
	var n int
	err := l.use(func() error {
		c, r := l.lib.DeviceGetCount()
		n = c
		return wrap("nvmlDeviceGetCount", "", r)
	})
	return n, err
}

// Device opens the GPU at index i (in NVML's enumeration order).
func (l *Library) Device(i int) (*Device, error) {
	var d *Device
	err := l.use(func() error {
		n, r := l.lib.DeviceGetCount()
		if err := wrap("nvmlDeviceGetCount", "", r); err != nil {
			return err
		}
		if i < 0 || i >= n {
			return fmt.Errorf("%w: GPU index %d, the driver reports %d GPUs (0..%d)", attest.ErrNoDevice, i, n, n-1)
		}
		h, r := l.lib.DeviceGetHandleByIndex(i)
		if err := wrap("nvmlDeviceGetHandleByIndex", fmt.Sprint(i), r); err != nil {
			return err
		}
		d = &Device{lib: l, h: h, index: i}
		return nil
	})
	return d, err
}

// Devices opens every GPU the driver reports.
func (l *Library) Devices() ([]*Device, error) {
	n, err := l.Count()
	if err != nil {
		return nil, err
	}
	out := make([]*Device, 0, n)
	for i := range n {
		d, err := l.Device(i)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Device is one GPU as NVML reports it. It implements attest.Identity and
// is safe for concurrent use.
type Device struct {
	lib   *Library
	h     gonvml.Device
	index int

	closed attest.CloseState
}

// Index returns the device's index in NVML's enumeration order.
func (d *Device) Index() int { return d.index }

func (d *Device) use(f func() error) error {
	if d.closed.Closed() {
		return fmt.Errorf("nvml: device %d closed: %w", d.index, attest.ErrClosed)
	}
	return d.lib.use(f)
}

// Close releases the device; the library stays open. It is idempotent.
func (d *Device) Close() error {
	d.closed.Close()
	return nil
}

// reader collects optional fields: a field that is not supported or not
// permitted is recorded; any other error is kept and ends the read.
type reader struct {
	dev         string
	unsupported []string
	err         error
}

// opt reports whether the call succeeded; on ErrNotSupported or
// ErrNoPermission it records field (once) and reports false.
func (rd *reader) opt(op, field string, r gonvml.Return) bool {
	if rd.err != nil {
		return false
	}
	err := wrap(op, rd.dev, r)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrNotSupported), errors.Is(err, ErrNoPermission):
		for _, f := range rd.unsupported {
			if f == field {
				return false
			}
		}
		rd.unsupported = append(rd.unsupported, field)
		return false
	default:
		rd.err = err
		return false
	}
}

// must reports whether a required call succeeded and keeps its error.
func (rd *reader) must(op string, r gonvml.Return) bool {
	if rd.err != nil {
		return false
	}
	rd.err = wrap(op, rd.dev, r)
	return rd.err == nil
}

// Fingerprint reads the device's identity from the driver. UUID and name
// are required; every other field is optional (see the package doc).
func (d *Device) Fingerprint(ctx context.Context) (attest.Fingerprint, error) {
	if err := ctx.Err(); err != nil {
		return attest.Fingerprint{}, err
	}
	var fp attest.Fingerprint
	err := d.use(func() error {
		rd := &reader{dev: fmt.Sprint(d.index)}
		var r gonvml.Return
		if fp.UUID, r = d.h.GetUUID(); !rd.must("nvmlDeviceGetUUID", r) {
			return rd.err
		}
		rd.dev = fmt.Sprintf("%d (%s)", d.index, fp.UUID)
		if fp.Name, r = d.h.GetName(); !rd.must("nvmlDeviceGetName", r) {
			return rd.err
		}
		if s, r := d.h.GetSerial(); rd.opt("nvmlDeviceGetSerial", attest.FieldSerial, r) {
			fp.Serial = s
		}
		if s, r := d.h.GetBoardPartNumber(); rd.opt("nvmlDeviceGetBoardPartNumber", attest.FieldBoardPartNumber, r) {
			fp.BoardPartNumber = s
		}
		if v, r := d.h.GetBoardId(); rd.opt("nvmlDeviceGetBoardId", attest.FieldBoardID, r) {
			fp.BoardID = uint64(v)
		}
		if p, r := d.h.GetPciInfo(); rd.opt("nvmlDeviceGetPciInfo", attest.FieldPCIInfo, r) {
			fp.PCIBusID = busID(p)
			fp.PCIDeviceID = p.PciDeviceId
			fp.PCISubsystemID = p.PciSubSystemId
		}
		if m, r := d.h.GetMemoryInfo(); rd.opt("nvmlDeviceGetMemoryInfo", attest.FieldMemoryTotal, r) {
			fp.MemoryTotalBytes = m.Total
		}
		if s, r := d.h.GetVbiosVersion(); rd.opt("nvmlDeviceGetVbiosVersion", attest.FieldVBIOSVersion, r) {
			fp.VBIOSVersion = s
		}
		if s, r := d.lib.lib.SystemGetDriverVersion(); rd.opt("nvmlSystemGetDriverVersion", attest.FieldDriverVersion, r) {
			fp.DriverVersion = s
		}
		if v, r := d.lib.lib.SystemGetCudaDriverVersion(); rd.opt("nvmlSystemGetCudaDriverVersion", attest.FieldCUDADriverVersion, r) {
			fp.CUDADriverVersion = int32(v)
		}
		if maj, min, r := d.h.GetCudaComputeCapability(); rd.opt("nvmlDeviceGetCudaComputeCapability", attest.FieldComputeCapability, r) {
			fp.ComputeCapabilityMajor, fp.ComputeCapabilityMinor = uint32(maj), uint32(min)
		}
		if v, r := d.h.GetMaxClockInfo(gonvml.CLOCK_SM); rd.opt("nvmlDeviceGetMaxClockInfo(SM)", attest.FieldMaxSMClock, r) {
			fp.MaxSMClockMHz = v
		}
		if v, r := d.h.GetMaxClockInfo(gonvml.CLOCK_MEM); rd.opt("nvmlDeviceGetMaxClockInfo(MEM)", attest.FieldMaxMemoryClock, r) {
			fp.MaxMemoryClockMHz = v
		}
		if v, r := d.h.GetEnforcedPowerLimit(); rd.opt("nvmlDeviceGetEnforcedPowerLimit", attest.FieldPowerLimit, r) {
			fp.PowerLimitMilliwatts = v
		}
		if cur, _, r := d.h.GetMigMode(); rd.opt("nvmlDeviceGetMigMode", attest.FieldMIGMode, r) {
			fp.MIGEnabled = cur == gonvml.DEVICE_MIG_ENABLE
		}
		if st, r := d.lib.lib.SystemGetConfComputeState(); rd.opt("nvmlSystemGetConfComputeState", attest.FieldCCMode, r) {
			fp.CCMode = ccMode(st)
		}
		fp.Unsupported = rd.unsupported
		return rd.err
	})
	if err != nil {
		return attest.Fingerprint{}, err
	}
	return fp, nil
}

// Telemetry reads the device's current sensors.
func (d *Device) Telemetry(ctx context.Context) (attest.Telemetry, error) {
	if err := ctx.Err(); err != nil {
		return attest.Telemetry{}, err
	}
	var t attest.Telemetry
	err := d.use(func() error {
		rd := &reader{dev: fmt.Sprint(d.index)}
		if v, r := d.h.GetTemperature(gonvml.TEMPERATURE_GPU); rd.opt("nvmlDeviceGetTemperature", attest.FieldTemperature, r) {
			t.TemperatureC = v
		}
		if v, r := d.h.GetPowerUsage(); rd.opt("nvmlDeviceGetPowerUsage", attest.FieldPower, r) {
			t.PowerMilliwatts = v
		}
		if v, r := d.h.GetClockInfo(gonvml.CLOCK_SM); rd.opt("nvmlDeviceGetClockInfo(SM)", attest.FieldSMClock, r) {
			t.SMClockMHz = v
		}
		if v, r := d.h.GetClockInfo(gonvml.CLOCK_MEM); rd.opt("nvmlDeviceGetClockInfo(MEM)", attest.FieldMemoryClock, r) {
			t.MemoryClockMHz = v
		}
		if u, r := d.h.GetUtilizationRates(); rd.opt("nvmlDeviceGetUtilizationRates", attest.FieldUtilization, r) {
			t.UtilizationPercent = u.Gpu
		}
		if m, r := d.h.GetMemoryInfo(); rd.opt("nvmlDeviceGetMemoryInfo", attest.FieldMemoryUsed, r) {
			t.MemoryUsedBytes = m.Used
		}
		t.Unsupported = rd.unsupported
		return rd.err
	})
	if err != nil {
		return attest.Telemetry{}, err
	}
	return t, nil
}

// busID returns the PCI bus id string, formatting it from the domain, bus
// and device numbers when the driver leaves the string empty.
func busID(p gonvml.PciInfo) string {
	var b strings.Builder
	for _, c := range p.BusId {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	if b.Len() > 0 {
		return b.String()
	}
	if p.Domain == 0 && p.Bus == 0 && p.Device == 0 {
		return ""
	}
	return fmt.Sprintf("%08X:%02X:%02X.0", p.Domain, p.Bus, p.Device)
}

func ccMode(st gonvml.ConfComputeSystemState) string {
	switch {
	case st.DevToolsMode == gonvml.CC_SYSTEM_DEVTOOLS_MODE_ON:
		return "devtools"
	case st.CcFeature == gonvml.CC_SYSTEM_FEATURE_ENABLED:
		return "on"
	default:
		return "off"
	}
}
