package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Fingerprint is the identity of one device as the attestor reports it at
// registration. On real hardware it is read from NVML; field names follow
// the DeviceFingerprint message of the node API. A field the driver does
// not report is left empty and its name (the JSON name below) is listed in
// Unsupported, so "not reported" is never confused with "zero".
type Fingerprint struct {
	UUID                   string   `json:"uuid"`
	Serial                 string   `json:"serial,omitempty"`
	BoardPartNumber        string   `json:"board_part_number,omitempty"`
	BoardID                uint64   `json:"board_id,omitempty"`
	PCIBusID               string   `json:"pci_bus_id,omitempty"`
	PCIDeviceID            uint32   `json:"pci_device_id,omitempty"`
	PCISubsystemID         uint32   `json:"pci_subsystem_id,omitempty"`
	Name                   string   `json:"name"`
	MemoryTotalBytes       uint64   `json:"memory_total_bytes"`
	VBIOSVersion           string   `json:"vbios_version,omitempty"`
	DriverVersion          string   `json:"driver_version,omitempty"`
	CUDADriverVersion      int32    `json:"cuda_driver_version,omitempty"`
	ComputeCapabilityMajor uint32   `json:"compute_capability_major,omitempty"`
	ComputeCapabilityMinor uint32   `json:"compute_capability_minor,omitempty"`
	MaxSMClockMHz          uint32   `json:"max_sm_clock_mhz,omitempty"`
	MaxMemoryClockMHz      uint32   `json:"max_memory_clock_mhz,omitempty"`
	PowerLimitMilliwatts   uint32   `json:"power_limit_mw,omitempty"`
	MIGEnabled             bool     `json:"mig_enabled"`
	CCMode                 string   `json:"cc_mode,omitempty"`
	Unsupported            []string `json:"unsupported_fields,omitempty"`
}

// Field names used in Fingerprint.Unsupported and Telemetry.Unsupported.
const (
	FieldSerial            = "serial"
	FieldBoardPartNumber   = "board_part_number"
	FieldBoardID           = "board_id"
	FieldPCIInfo           = "pci_info"
	FieldMemoryTotal       = "memory_total_bytes"
	FieldVBIOSVersion      = "vbios_version"
	FieldDriverVersion     = "driver_version"
	FieldCUDADriverVersion = "cuda_driver_version"
	FieldComputeCapability = "compute_capability"
	FieldMaxSMClock        = "max_sm_clock_mhz"
	FieldMaxMemoryClock    = "max_memory_clock_mhz"
	FieldPowerLimit        = "power_limit_mw"
	FieldMIGMode           = "mig_mode"
	FieldCCMode            = "cc_mode"
	FieldTemperature       = "temperature_c"
	FieldPower             = "power_mw"
	FieldSMClock           = "sm_clock_mhz"
	FieldMemoryClock       = "memory_clock_mhz"
	FieldUtilization       = "utilization_percent"
	FieldMemoryUsed        = "memory_used_bytes"
)

// Clone returns a deep copy of f.
func (f Fingerprint) Clone() Fingerprint {
	f.Unsupported = slices.Clone(f.Unsupported)
	return f
}

// Equal reports whether two fingerprints are identical field by field.
func (f Fingerprint) Equal(g Fingerprint) bool {
	return slices.Equal(f.Unsupported, g.Unsupported) && f.identity() == g.identity()
}

// comparableFingerprint is Fingerprint without its slice, so that == works.
type comparableFingerprint struct {
	UUID, Serial, BoardPartNumber               string
	BoardID                                     uint64
	PCIBusID                                    string
	PCIDeviceID, PCISubsystemID                 uint32
	Name                                        string
	MemoryTotalBytes                            uint64
	VBIOSVersion, DriverVersion                 string
	CUDADriverVersion                           int32
	CCMajor, CCMinor, MaxSM, MaxMem, PowerLimit uint32
	MIGEnabled                                  bool
	CCMode                                      string
}

func (f Fingerprint) identity() comparableFingerprint {
	return comparableFingerprint{f.UUID, f.Serial, f.BoardPartNumber, f.BoardID, f.PCIBusID,
		f.PCIDeviceID, f.PCISubsystemID, f.Name, f.MemoryTotalBytes, f.VBIOSVersion, f.DriverVersion,
		f.CUDADriverVersion, f.ComputeCapabilityMajor, f.ComputeCapabilityMinor, f.MaxSMClockMHz,
		f.MaxMemoryClockMHz, f.PowerLimitMilliwatts, f.MIGEnabled, f.CCMode}
}

// Digest is the oracle's digest of the stable fields of f
// (truegpuv1.FingerprintDigest): UUID, serial, board part number and id,
// PCI device and subsystem ids, name, memory, VBIOS and compute capability,
// leaving out what changes with driver upgrades, clocks, power settings
// and the PCI slot. Two devices with equal digests claim to be the same
// board.
func (f Fingerprint) Digest() [32]byte { return truegpuv1.FingerprintDigest(f.Proto()) }

// uuidFromSeed formats the first 16 bytes of SHA-256(label || seed) as an
// NVML-style UUID ("GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") with the
// given prefix.
func uuidFromSeed(prefix, label string, seed []byte) string {
	sum := sha256.Sum256(append([]byte(label), seed...))
	h := hex.EncodeToString(sum[:16])
	return prefix + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// UUIDFromSeed returns a deterministic NVML-style UUID derived from seed,
// e.g. "GPU-1f0c3a9e-...". Simulated and CPU devices use it; prefix is
// "GPU-" or "CPU-".
func UUIDFromSeed(prefix string, seed []byte) string {
	return uuidFromSeed(prefix, "truegpu/uuid/v1", seed)
}
