package truegpuv1

import (
	"encoding/hex"
	"testing"
)

// TestFingerprintDigestPinned pins the digest of one fingerprint: the
// oracle stores it for every device, so any change to its definition is a
// change of the state format and must show up here.
func TestFingerprintDigestPinned(t *testing.T) {
	fp := &DeviceFingerprint{Uuid: "GPU-1", Serial: "1650", BoardId: 7, PciBusId: "00000000:18:00.0",
		PciDeviceId: 0x233010de, Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 85520809984,
		VbiosVersion: "96.00.74.00.01", DriverVersion: "550.54.15", ComputeCapabilityMajor: 9}
	got := FingerprintDigest(fp)
	const want = "a37f81897e30a551abe845e926e49f34826c7ce065e9b0b99c2f5573e5c7c0c9"
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("digest %x, want %s", got, want)
	}
	moved := &DeviceFingerprint{}
	*moved = DeviceFingerprint{Uuid: fp.Uuid, Serial: fp.Serial, BoardId: fp.BoardId, PciBusId: "00000000:9a:00.0",
		PciDeviceId: fp.PciDeviceId, Name: fp.Name, MemoryTotalBytes: fp.MemoryTotalBytes,
		VbiosVersion: fp.VbiosVersion, DriverVersion: "560.1", MaxSmClockMhz: 1980, ComputeCapabilityMajor: 9}
	if FingerprintDigest(moved) != got {
		t.Error("digest changed with the PCI slot, driver or clocks")
	}
	if FingerprintDigest(nil) == got || FingerprintDigest(nil) != FingerprintDigest(nil) {
		t.Error("nil fingerprint")
	}
}
