package attest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

func nonce(i int) prover.Nonce {
	var n prover.Nonce
	n[0] = byte(i)
	return n
}

func TestResultStore(t *testing.T) {
	tests := []struct {
		name     string
		store    *attest.ResultStore
		puts     []int
		held     []int
		evicted  []int
		wantLen  int
		wantCell map[int]int32
	}{
		{"zero value holds MinHeldResults", &attest.ResultStore{}, []int{1, 2, 3, 4, 5}, []int{2, 3, 4, 5}, []int{1}, 4, nil},
		{"capacity below minimum is raised", attest.NewResultStore(1), []int{1, 2, 3, 4}, []int{1, 2, 3, 4}, nil, 4, nil},
		{"larger capacity", attest.NewResultStore(6), []int{1, 2, 3, 4, 5, 6, 7}, []int{2, 7}, []int{1}, 6, nil},
		{"re-put refreshes", attest.NewResultStore(4), []int{1, 2, 3, 4, 1, 5}, []int{1, 3, 4, 5}, []int{2}, 4, map[int]int32{1: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.puts {
				tc.store.Put(nonce(p), []int32{int32(p)})
			}
			for _, h := range tc.held {
				c, err := tc.store.Get(nonce(h))
				if err != nil || c[0] != int32(h) {
					t.Errorf("Get(%d) = %v, %v", h, c, err)
				}
			}
			for _, e := range tc.evicted {
				if _, err := tc.store.Get(nonce(e)); !errors.Is(err, attest.ErrNoResults) {
					t.Errorf("Get(evicted %d) error = %v, want ErrNoResults", e, err)
				}
			}
			if tc.store.Len() != tc.wantLen {
				t.Errorf("Len = %d, want %d", tc.store.Len(), tc.wantLen)
			}
		})
	}
}

func sampleFingerprint() attest.Fingerprint {
	return attest.Fingerprint{
		UUID: "GPU-1", Serial: "165", BoardPartNumber: "692", BoardID: 7, PCIBusID: "00000000:18:00.0",
		PCIDeviceID: 0x233010DE, PCISubsystemID: 0x16C110DE, Name: "NVIDIA H100 80GB HBM3",
		MemoryTotalBytes: 80 << 30, VBIOSVersion: "96", DriverVersion: "550.54.15", CUDADriverVersion: 12040,
		ComputeCapabilityMajor: 9, MaxSMClockMHz: 1980, MaxMemoryClockMHz: 2619, PowerLimitMilliwatts: 700000,
		MIGEnabled: true, CCMode: "on", Unsupported: []string{attest.FieldSerial},
	}
}

func TestFingerprintProtoRoundTrip(t *testing.T) {
	f := sampleFingerprint()
	m := f.Proto()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back truegpuv1.DeviceFingerprint
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if g := attest.FingerprintFromProto(&back); !g.Equal(f) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", g, f)
	}
	if g := attest.FingerprintFromProto(nil); !g.Equal(attest.Fingerprint{}) {
		t.Fatalf("nil proto gave %+v", g)
	}
}

func TestFingerprintDigest(t *testing.T) {
	f := sampleFingerprint()
	base := f.Digest()
	same := f.Clone()
	same.DriverVersion, same.PowerLimitMilliwatts, same.CCMode = "560.1", 1, "off"
	same.PCIBusID, same.MaxSMClockMHz = "00000000:99:00.0", 1
	if same.Digest() != base {
		t.Error("digest changed with driver, power limit, CC mode, clocks or PCI slot")
	}
	if base != truegpuv1.FingerprintDigest(f.Proto()) {
		t.Error("the attestor's digest is not the one the oracle records")
	}
	mutations := []func(*attest.Fingerprint){
		func(f *attest.Fingerprint) { f.UUID = "GPU-2" },
		func(f *attest.Fingerprint) { f.Serial = "166" },
		func(f *attest.Fingerprint) { f.BoardID = 8 },
		func(f *attest.Fingerprint) { f.Name = "NVIDIA A100-SXM4-80GB" },
		func(f *attest.Fingerprint) { f.MemoryTotalBytes-- },
		func(f *attest.Fingerprint) { f.VBIOSVersion = "96.00.99.00.01" },
		func(f *attest.Fingerprint) { f.PCIDeviceID++ },
		func(f *attest.Fingerprint) { f.ComputeCapabilityMinor++ },
		// Length prefixes keep field boundaries: moving a byte between
		// adjacent strings changes the digest.
		func(f *attest.Fingerprint) { f.UUID, f.Serial = "GPU-11", "65" },
	}
	for i, m := range mutations {
		g := f.Clone()
		m(&g)
		if g.Digest() == base {
			t.Errorf("mutation %d left the digest unchanged", i)
		}
	}
}

func TestUUIDFromSeed(t *testing.T) {
	a, b := attest.UUIDFromSeed("GPU-", []byte("a")), attest.UUIDFromSeed("GPU-", []byte("b"))
	if a == b || a != attest.UUIDFromSeed("GPU-", []byte("a")) {
		t.Fatalf("UUIDFromSeed not deterministic or not distinct: %s %s", a, b)
	}
	if len(a) != 40 || a[12] != '-' || a[17] != '-' {
		t.Fatalf("UUID %q is not in NVML's format", a)
	}
}

func TestNodeKeySign(t *testing.T) {
	k := attest.NodeKeyFromSeed([]byte("node"))
	req := &truegpuv1.SubmitCommitmentRequest{ChallengeId: "0x01", Address: k.Address().String(), Root: make([]byte, 32)}
	if err := k.Sign(req); err != nil {
		t.Fatal(err)
	}
	if len(req.Signature) != ethcrypto.SignatureLen {
		t.Fatalf("signature length %d", len(req.Signature))
	}
	if ok, err := attest.VerifySignature(req, k.Address()); !ok || err != nil {
		t.Fatalf("VerifySignature = %v, %v", ok, err)
	}
	req.Root[0] = 1
	if ok, _ := attest.VerifySignature(req, k.Address()); ok {
		t.Fatal("signature still verifies after the root changed")
	}
	if err := k.Sign(&truegpuv1.Challenge{}); !errors.Is(err, truegpuv1.ErrNotSignable) {
		t.Fatalf("Sign(Challenge) error = %v, want ErrNotSignable", err)
	}
	if k.ProverAddress() != prover.Address(k.Address()) {
		t.Fatal("ProverAddress differs from Address")
	}
}

func TestNodeKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	k, created, err := attest.LoadOrCreateNodeKey(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateNodeKey(new) = %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	k2, created, err := attest.LoadOrCreateNodeKey(path)
	if err != nil || created || k2.Address() != k.Address() {
		t.Fatalf("reload = %v, created %v, %v", k2.Address(), created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := attest.LoadNodeKey(path); !errors.Is(err, ethcrypto.ErrKeyFilePermissions) {
		t.Fatalf("loading a 0644 key: %v, want ErrKeyFilePermissions", err)
	}
	if _, _, err := attest.LoadOrCreateNodeKey(path); !errors.Is(err, ethcrypto.ErrKeyFilePermissions) {
		t.Fatalf("LoadOrCreate on a 0644 key: %v, want ErrKeyFilePermissions (never regenerate)", err)
	}
	if err := k.Save(path); !errors.Is(err, ethcrypto.ErrKeyFileExists) {
		t.Fatalf("Save over an existing file: %v", err)
	}
}

func TestWorkloadValidate(t *testing.T) {
	p, _ := prover.ProfileByName("test")
	bad := *p
	bad.M = 3
	tests := []struct {
		name string
		w    attest.Workload
		ok   bool
	}{
		{"valid", attest.Workload{Profile: p}, true},
		{"no profile", attest.Workload{}, false},
		{"invalid profile", attest.Workload{Profile: &bad}, false},
	}
	for _, tc := range tests {
		err := tc.w.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, attest.ErrBadWorkload)) {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

// Signing the commitment is on the time-critical path.
func BenchmarkSignCommitment(b *testing.B) {
	k := attest.NodeKeyFromSeed([]byte("bench"))
	req := &truegpuv1.SubmitCommitmentRequest{ChallengeId: "0x" + strings.Repeat("ab", 32), Address: k.Address().String(), Root: make([]byte, 32), DeviceElapsedMs: 12}
	for b.Loop() {
		if err := k.Sign(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprintDigest(b *testing.B) {
	f := sampleFingerprint()
	for b.Loop() {
		_ = f.Digest()
	}
}
