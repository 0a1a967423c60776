package attest

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// FuzzChallenge feeds arbitrary bytes, decoded as a Challenge as the gRPC
// client would, to the attestor's validation. It must never panic, must
// reject with ErrBadChallenge, and must accept only challenges for this
// node and device with a published profile's exact parameters.
func FuzzChallenge(f *testing.F) {
	key := NodeKeyFromSeed([]byte("fuzz"))
	a := &Agent{addr: key.Address().String(), cfg: AgentConfig{Devices: make([]AgentDevice, 2)},
		fps: []Fingerprint{{UUID: "GPU-0"}, {UUID: "GPU-1"}}}
	for _, name := range []string{"test", "demo", "standard"} {
		p, err := prover.ProfileByName(name)
		if err != nil {
			f.Fatal(err)
		}
		d := p.Digest()
		ch := &truegpuv1.Challenge{ChallengeId: "0x01", Address: a.addr, DeviceIndex: 1, DeviceUuid: "GPU-1",
			Nonce:  make([]byte, 32),
			Params: &truegpuv1.WorkloadParams{Profile: p.ID(), M: uint32(p.M), N: uint32(p.N), K: uint32(p.K), Samples: uint32(p.Q), ParamsDigest: d[:]}}
		b, err := proto.Marshal(ch)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		ch.Params.Profile = name + "/v"
		b, _ = proto.Marshal(ch)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ch truegpuv1.Challenge
		if proto.Unmarshal(b, &ch) != nil {
			return
		}
		w, idx, err := a.validate(&ch)
		if err != nil {
			if !errors.Is(err, ErrBadChallenge) {
				t.Fatalf("validation error %v does not wrap ErrBadChallenge", err)
			}
			return
		}
		if idx < 0 || idx >= len(a.fps) || w.Validate() != nil {
			t.Fatalf("accepted device %d, workload %+v", idx, w)
		}
		p := w.Profile
		if int(ch.Params.M) != p.M || int(ch.Params.N) != p.N || int(ch.Params.K) != p.K || int(ch.Params.Samples) != p.Q {
			t.Fatalf("accepted parameters %v for %s", ch.Params, p.ID())
		}
		if w.Nonce != prover.Nonce(ch.Nonce) {
			t.Fatal("workload nonce differs from the challenge's")
		}
	})
}
