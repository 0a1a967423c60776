package attest

import (
	"slices"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Proto returns f as the node API's DeviceFingerprint message.
func (f Fingerprint) Proto() *truegpuv1.DeviceFingerprint {
	return &truegpuv1.DeviceFingerprint{
		Uuid:                   f.UUID,
		Serial:                 f.Serial,
		BoardPartNumber:        f.BoardPartNumber,
		BoardId:                f.BoardID,
		PciBusId:               f.PCIBusID,
		PciDeviceId:            f.PCIDeviceID,
		PciSubsystemId:         f.PCISubsystemID,
		Name:                   f.Name,
		MemoryTotalBytes:       f.MemoryTotalBytes,
		VbiosVersion:           f.VBIOSVersion,
		DriverVersion:          f.DriverVersion,
		CudaDriverVersion:      f.CUDADriverVersion,
		ComputeCapabilityMajor: f.ComputeCapabilityMajor,
		ComputeCapabilityMinor: f.ComputeCapabilityMinor,
		MaxSmClockMhz:          f.MaxSMClockMHz,
		MaxMemoryClockMhz:      f.MaxMemoryClockMHz,
		PowerLimitMw:           f.PowerLimitMilliwatts,
		MigEnabled:             f.MIGEnabled,
		CcMode:                 f.CCMode,
		UnsupportedFields:      slices.Clone(f.Unsupported),
	}
}

// FingerprintFromProto converts the node API's DeviceFingerprint message;
// nil gives the zero Fingerprint.
func FingerprintFromProto(m *truegpuv1.DeviceFingerprint) Fingerprint {
	if m == nil {
		return Fingerprint{}
	}
	return Fingerprint{
		UUID:                   m.GetUuid(),
		Serial:                 m.GetSerial(),
		BoardPartNumber:        m.GetBoardPartNumber(),
		BoardID:                m.GetBoardId(),
		PCIBusID:               m.GetPciBusId(),
		PCIDeviceID:            m.GetPciDeviceId(),
		PCISubsystemID:         m.GetPciSubsystemId(),
		Name:                   m.GetName(),
		MemoryTotalBytes:       m.GetMemoryTotalBytes(),
		VBIOSVersion:           m.GetVbiosVersion(),
		DriverVersion:          m.GetDriverVersion(),
		CUDADriverVersion:      m.GetCudaDriverVersion(),
		ComputeCapabilityMajor: m.GetComputeCapabilityMajor(),
		ComputeCapabilityMinor: m.GetComputeCapabilityMinor(),
		MaxSMClockMHz:          m.GetMaxSmClockMhz(),
		MaxMemoryClockMHz:      m.GetMaxMemoryClockMhz(),
		PowerLimitMilliwatts:   m.GetPowerLimitMw(),
		MIGEnabled:             m.GetMigEnabled(),
		CCMode:                 m.GetCcMode(),
		Unsupported:            slices.Clone(m.GetUnsupportedFields()),
	}
}
