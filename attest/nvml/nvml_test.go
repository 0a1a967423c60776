//go:build cgo

package nvml

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/cpu"
	"github.com/truegpu/truegpu/attest/devicetest"
	"github.com/truegpu/truegpu/internal/gpuclass"
)

// newDGXH100 returns go-nvml's simulated DGX H100 with the calls the mock
// leaves unimplemented filled in as a real H100 SXM5 driver answers them.
func newDGXH100(t testing.TB) *server.Server {
	t.Helper()
	s := dgxh100.New()
	s.SystemGetConfComputeStateFunc = func() (gonvml.ConfComputeSystemState, gonvml.Return) {
		return gonvml.ConfComputeSystemState{CcFeature: 0, DevToolsMode: 0}, gonvml.SUCCESS
	}
	for i, dev := range s.Devices {
		d := dev.(*server.Device)
		d.GetSerialFunc = func() (string, gonvml.Return) { return fmt.Sprintf("165232300%04d", i), gonvml.SUCCESS }
		d.GetBoardPartNumberFunc = func() (string, gonvml.Return) { return "692-2G520-0200-000", gonvml.SUCCESS }
		d.GetBoardIdFunc = func() (uint32, gonvml.Return) { return uint32(0x1800 + i*0x100), gonvml.SUCCESS }
		d.GetVbiosVersionFunc = func() (string, gonvml.Return) { return "96.00.74.00.1C", gonvml.SUCCESS }
		d.GetMaxClockInfoFunc = func(c gonvml.ClockType) (uint32, gonvml.Return) {
			if c == gonvml.CLOCK_SM {
				return 1980, gonvml.SUCCESS
			}
			return 2619, gonvml.SUCCESS
		}
		d.GetEnforcedPowerLimitFunc = func() (uint32, gonvml.Return) { return 700000, gonvml.SUCCESS }
		d.GetTemperatureFunc = func(gonvml.TemperatureSensors) (uint32, gonvml.Return) { return 34, gonvml.SUCCESS }
		d.GetPowerUsageFunc = func() (uint32, gonvml.Return) { return 71000, gonvml.SUCCESS }
		d.GetClockInfoFunc = func(c gonvml.ClockType) (uint32, gonvml.Return) { return 345, gonvml.SUCCESS }
		d.GetUtilizationRatesFunc = func() (gonvml.Utilization, gonvml.Return) { return gonvml.Utilization{Gpu: 0}, gonvml.SUCCESS }
		pci := d.GetPciInfoFunc
		d.GetPciInfoFunc = func() (gonvml.PciInfo, gonvml.Return) {
			p, r := pci()
			p.Bus = uint32(0x18 + i)
			p.PciSubSystemId = 0x16C110DE
			return p, r
		}
	}
	return s
}

func openMock(t testing.TB, s *server.Server) *Library {
	t.Helper()
	l, err := openInterface(s)
	if err != nil {
		t.Fatalf("open mock NVML: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func mockDevice(s *server.Server, i int) *server.Device { return s.Devices[i].(*server.Device) }

// An NVML-identified device running the reference workload must pass the
// device conformance suite.
func TestConformance(t *testing.T) {
	l := openMock(t, newDGXH100(t))
	devicetest.Run(t, func(t *testing.T) attest.Device {
		d, err := l.Device(0)
		if err != nil {
			t.Fatal(err)
		}
		return attest.Combine(d, cpu.New(cpu.Options{Seed: []byte(t.Name())}))
	}, devicetest.Config{})
}

func TestFingerprintDGXH100(t *testing.T) {
	s := newDGXH100(t)
	l := openMock(t, s)
	devs, err := l.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 8 {
		t.Fatalf("DGX H100 has %d devices, want 8", len(devs))
	}
	uuids := map[string]bool{}
	for i, d := range devs {
		fp, err := d.Fingerprint(context.Background())
		if err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
		if uuids[fp.UUID] || !strings.HasPrefix(fp.UUID, "GPU-") {
			t.Errorf("device %d: UUID %q duplicate or malformed", i, fp.UUID)
		}
		uuids[fp.UUID] = true
		want := attest.Fingerprint{
			UUID:                   mockDevice(s, i).UUID,
			Serial:                 fmt.Sprintf("165232300%04d", i),
			BoardPartNumber:        "692-2G520-0200-000",
			BoardID:                uint64(0x1800 + i*0x100),
			PCIBusID:               fmt.Sprintf("00000000:%02X:00.0", 0x18+i),
			PCIDeviceID:            0x233010DE,
			PCISubsystemID:         0x16C110DE,
			Name:                   "NVIDIA H100 80GB HBM3",
			MemoryTotalBytes:       gpus.H100_SXM5_80GB.MemoryMB << 20,
			VBIOSVersion:           "96.00.74.00.1C",
			DriverVersion:          s.DriverVersion,
			CUDADriverVersion:      int32(s.CudaDriverVersion),
			ComputeCapabilityMajor: 9,
			ComputeCapabilityMinor: 0,
			MaxSMClockMHz:          1980,
			MaxMemoryClockMHz:      2619,
			PowerLimitMilliwatts:   700000,
			CCMode:                 "off",
		}
		if !fp.Equal(want) {
			t.Errorf("device %d fingerprint\n got %+v\nwant %+v", i, fp, want)
		}
		if c, ok := gpuclass.MatchNVMLName(fp.Name); !ok || c.Name != gpuclass.H100SXM {
			t.Errorf("device %d: class of %q = %q, %v; want H100-SXM", i, fp.Name, c.Name, ok)
		}
	}
}

func TestMIGAndCCModes(t *testing.T) {
	s := newDGXH100(t)
	s.SystemGetConfComputeStateFunc = func() (gonvml.ConfComputeSystemState, gonvml.Return) {
		return gonvml.ConfComputeSystemState{CcFeature: gonvml.CC_SYSTEM_FEATURE_ENABLED}, gonvml.SUCCESS
	}
	if r, _ := mockDevice(s, 1).SetMigMode(gonvml.DEVICE_MIG_ENABLE); r != gonvml.SUCCESS {
		t.Fatalf("SetMigMode: %v", r)
	}
	l := openMock(t, s)
	d0, _ := l.Device(0)
	d1, _ := l.Device(1)
	f0, err0 := d0.Fingerprint(context.Background())
	f1, err1 := d1.Fingerprint(context.Background())
	if err0 != nil || err1 != nil {
		t.Fatal(err0, err1)
	}
	if f0.MIGEnabled || !f1.MIGEnabled {
		t.Errorf("MIG: device 0 %v (want false), device 1 %v (want true)", f0.MIGEnabled, f1.MIGEnabled)
	}
	if f0.CCMode != "on" {
		t.Errorf("CC mode %q, want on", f0.CCMode)
	}
	s.SystemGetConfComputeStateFunc = func() (gonvml.ConfComputeSystemState, gonvml.Return) {
		return gonvml.ConfComputeSystemState{CcFeature: 1, DevToolsMode: gonvml.CC_SYSTEM_DEVTOOLS_MODE_ON}, gonvml.SUCCESS
	}
	if f, _ := d0.Fingerprint(context.Background()); f.CCMode != "devtools" {
		t.Errorf("CC mode %q, want devtools", f.CCMode)
	}
}

// Optional fields the driver cannot report are left empty and listed; the
// read still succeeds.
func TestOptionalFieldsNotReported(t *testing.T) {
	tests := []struct {
		name   string
		code   gonvml.Return
		inject func(d *server.Device, s *server.Server, r gonvml.Return)
		field  string
		check  func(f attest.Fingerprint) bool
	}{
		{"serial not supported", gonvml.ERROR_NOT_SUPPORTED,
			func(d *server.Device, _ *server.Server, r gonvml.Return) {
				d.GetSerialFunc = func() (string, gonvml.Return) { return "", r }
			}, attest.FieldSerial, func(f attest.Fingerprint) bool { return f.Serial == "" }},
		{"board part number no permission", gonvml.ERROR_NO_PERMISSION,
			func(d *server.Device, _ *server.Server, r gonvml.Return) {
				d.GetBoardPartNumberFunc = func() (string, gonvml.Return) { return "", r }
			}, attest.FieldBoardPartNumber, func(f attest.Fingerprint) bool { return f.BoardPartNumber == "" }},
		{"cc mode on an old driver", gonvml.ERROR_FUNCTION_NOT_FOUND,
			func(_ *server.Device, s *server.Server, r gonvml.Return) {
				s.SystemGetConfComputeStateFunc = func() (gonvml.ConfComputeSystemState, gonvml.Return) { return gonvml.ConfComputeSystemState{}, r }
			}, attest.FieldCCMode, func(f attest.Fingerprint) bool { return f.CCMode == "" }},
		{"power limit not supported", gonvml.ERROR_NOT_SUPPORTED,
			func(d *server.Device, _ *server.Server, r gonvml.Return) {
				d.GetEnforcedPowerLimitFunc = func() (uint32, gonvml.Return) { return 0, r }
			}, attest.FieldPowerLimit, func(f attest.Fingerprint) bool { return f.PowerLimitMilliwatts == 0 }},
		{"max clocks not supported", gonvml.ERROR_NOT_SUPPORTED,
			func(d *server.Device, _ *server.Server, r gonvml.Return) {
				d.GetMaxClockInfoFunc = func(gonvml.ClockType) (uint32, gonvml.Return) { return 0, r }
			}, attest.FieldMaxSMClock, func(f attest.Fingerprint) bool { return f.MaxSMClockMHz == 0 && f.MaxMemoryClockMHz == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newDGXH100(t)
			tc.inject(mockDevice(s, 0), s, tc.code)
			l := openMock(t, s)
			d, _ := l.Device(0)
			f, err := d.Fingerprint(context.Background())
			if err != nil {
				t.Fatalf("Fingerprint: %v", err)
			}
			if !tc.check(f) {
				t.Errorf("field not left empty: %+v", f)
			}
			found := 0
			for _, u := range f.Unsupported {
				if u == tc.field {
					found++
				}
			}
			if found != 1 {
				t.Errorf("Unsupported = %v, want %q once", f.Unsupported, tc.field)
			}
			if f.UUID == "" || f.Name == "" {
				t.Errorf("required fields lost: %+v", f)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(s *server.Server)
		call    func(l *Library) error
		want    error
		wantMsg string
	}{
		{"library missing", func(s *server.Server) {
			s.InitFunc = func() gonvml.Return { return gonvml.ERROR_LIBRARY_NOT_FOUND }
		}, nil, ErrLibraryNotFound, "--device cpu"},
		{"driver not loaded", func(s *server.Server) {
			s.InitFunc = func() gonvml.Return { return gonvml.ERROR_DRIVER_NOT_LOADED }
		}, nil, ErrDriverNotLoaded, "kernel module"},
		{"device lost on UUID", func(s *server.Server) {
			mockDevice(s, 0).GetUUIDFunc = func() (string, gonvml.Return) { return "", gonvml.ERROR_GPU_IS_LOST }
		}, func(l *Library) error {
			d, _ := l.Device(0)
			_, err := d.Fingerprint(context.Background())
			return err
		}, ErrDeviceLost, "nvmlDeviceGetUUID on device 0"},
		{"device lost mid-read", func(s *server.Server) {
			mockDevice(s, 2).GetVbiosVersionFunc = func() (string, gonvml.Return) { return "", gonvml.ERROR_GPU_IS_LOST }
		}, func(l *Library) error {
			d, _ := l.Device(2)
			_, err := d.Fingerprint(context.Background())
			return err
		}, ErrDeviceLost, "nvmlDeviceGetVbiosVersion on device 2 (GPU-"},
		{"device lost on telemetry", func(s *server.Server) {
			mockDevice(s, 0).GetPowerUsageFunc = func() (uint32, gonvml.Return) { return 0, gonvml.ERROR_GPU_IS_LOST }
		}, func(l *Library) error {
			d, _ := l.Device(0)
			_, err := d.Telemetry(context.Background())
			return err
		}, ErrDeviceLost, "reset it"},
		{"name unsupported is fatal", func(s *server.Server) {
			mockDevice(s, 0).GetNameFunc = func() (string, gonvml.Return) { return "", gonvml.ERROR_NOT_SUPPORTED }
		}, func(l *Library) error {
			d, _ := l.Device(0)
			_, err := d.Fingerprint(context.Background())
			return err
		}, attest.ErrNotSupported, "nvmlDeviceGetName"},
		{"unknown error", func(s *server.Server) {
			mockDevice(s, 0).GetSerialFunc = func() (string, gonvml.Return) { return "", gonvml.ERROR_UNKNOWN }
		}, func(l *Library) error {
			d, _ := l.Device(0)
			_, err := d.Fingerprint(context.Background())
			return err
		}, ErrLibrary, "nvmlDeviceGetSerial"},
		{"index out of range", nil, func(l *Library) error {
			_, err := l.Device(8)
			return err
		}, attest.ErrNoDevice, "reports 8 GPUs"},
		{"count fails", func(s *server.Server) {
			s.DeviceGetCountFunc = func() (int, gonvml.Return) { return 0, gonvml.ERROR_DRIVER_NOT_LOADED }
		}, func(l *Library) error {
			_, err := l.Devices()
			return err
		}, ErrDriverNotLoaded, "nvmlDeviceGetCount"},
		{"library closed", nil, func(l *Library) error {
			d, _ := l.Device(0)
			_ = l.Close()
			_, err := d.Fingerprint(context.Background())
			return err
		}, attest.ErrClosed, "library closed"},
		{"device closed", nil, func(l *Library) error {
			d, _ := l.Device(0)
			_ = d.Close()
			_, err := d.Telemetry(context.Background())
			return err
		}, attest.ErrClosed, "device 0 closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newDGXH100(t)
			if tc.setup != nil {
				tc.setup(s)
			}
			l, err := openInterface(s)
			if err == nil {
				t.Cleanup(func() { _ = l.Close() })
				if tc.call == nil {
					t.Fatal("open succeeded, want an error")
				}
				err = tc.call(l)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			var ne *Error
			if errors.Is(err, ErrLibraryNotFound) && !errors.As(err, &ne) {
				t.Errorf("error %v does not carry an *Error", err)
			}
		})
	}
}

func TestTelemetry(t *testing.T) {
	s := newDGXH100(t)
	mockDevice(s, 0).GetUtilizationRatesFunc = func() (gonvml.Utilization, gonvml.Return) {
		return gonvml.Utilization{}, gonvml.ERROR_NOT_SUPPORTED
	}
	l := openMock(t, s)
	d, _ := l.Device(0)
	tel, err := d.Telemetry(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := attest.Telemetry{TemperatureC: 34, PowerMilliwatts: 71000, SMClockMHz: 345, MemoryClockMHz: 345,
		Unsupported: []string{attest.FieldUtilization}}
	if fmt.Sprint(tel) != fmt.Sprint(want) {
		t.Errorf("Telemetry = %+v, want %+v", tel, want)
	}
}

// On a machine without NVIDIA's library, opening the real library fails
// with ErrLibraryNotFound and a message that names the way out.
func TestOpenRealLibrary(t *testing.T) {
	l, err := Open(Options{LibraryPath: "/nonexistent/libnvidia-ml.so.1"})
	if err == nil {
		l.Close()
		t.Fatal("opening a nonexistent library succeeded")
	}
	if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "--device cpu") {
		t.Fatalf("error = %v, want ErrLibraryNotFound mentioning --device cpu", err)
	}
	l, err = Open(Options{})
	if err == nil {
		defer l.Close()
		n, err := l.Count()
		t.Logf("NVIDIA library present: %d GPUs (%v)", n, err)
		return
	}
	if !errors.Is(err, ErrLibraryNotFound) && !errors.Is(err, ErrDriverNotLoaded) {
		t.Fatalf("Open without a GPU: %v, want ErrLibraryNotFound or ErrDriverNotLoaded", err)
	}
}
