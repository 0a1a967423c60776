package truegpuv1

import (
	"golang.org/x/crypto/sha3"
	"google.golang.org/protobuf/proto"
)

// FingerprintDigest is the digest of a device's stable fingerprint fields,
// those that do not change with a driver update, clock or power settings
// or the slot the board sits in:
//
//	keccak256("truegpu.v1 fingerprint\x00" || deterministic protobuf encoding of
//	    DeviceFingerprint{uuid, serial, board_part_number, board_id,
//	    pci_device_id, pci_subsystem_id, name, memory_total_bytes,
//	    vbios_version, compute_capability_major, compute_capability_minor})
//
// It is the one fingerprint digest: the oracle records it for every
// registered device (a change of it is an identity event) and the
// attestor's `fingerprint` verb prints it. It is part of the state format.
// A nil fingerprint digests as keccak256 of nothing.
func FingerprintDigest(fp *DeviceFingerprint) [32]byte {
	h := sha3.NewLegacyKeccak256()
	if fp != nil {
		stable := &DeviceFingerprint{
			Uuid: fp.Uuid, Serial: fp.Serial, BoardPartNumber: fp.BoardPartNumber, BoardId: fp.BoardId,
			PciDeviceId: fp.PciDeviceId, PciSubsystemId: fp.PciSubsystemId, Name: fp.Name,
			MemoryTotalBytes: fp.MemoryTotalBytes, VbiosVersion: fp.VbiosVersion,
			ComputeCapabilityMajor: fp.ComputeCapabilityMajor, ComputeCapabilityMinor: fp.ComputeCapabilityMinor,
		}
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(stable)
		h.Write([]byte("truegpu.v1 fingerprint\x00"))
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
