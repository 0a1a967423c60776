package oracle

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestPublicViewsHideDeviceIdentifiers: GetNode shows digests instead of a
// device's UUID and serial, in the devices and in reason details, the same
// digest for nodes that share an identifier; the node's own challenges
// still name its UUID.
func TestPublicViewsHideDeviceIdentifiers(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	honest := newTestNode(1)
	honest.dev.Fingerprint.Serial = "1650123456789"
	clone := newTestNode(2)
	clone.dev = proto.Clone(honest.dev).(*truegpuv1.Device)
	for _, n := range []*testNode{honest, clone} {
		if _, err := m.pipeline.Register(ctx, n.registerReq(m.cfg.Now())); err != nil {
			t.Fatal(err)
		}
	}
	rep := &reputationService{m: m}
	var shown []string
	for _, n := range []*testNode{honest, clone} {
		resp, err := rep.GetNode(ctx, &truegpuv1.GetNodeRequest{Address: n.addr()})
		if err != nil {
			t.Fatal(err)
		}
		js := protojson.Format(resp)
		for _, raw := range []string{honest.dev.Fingerprint.Uuid, honest.dev.Fingerprint.Serial} {
			if strings.Contains(js, raw) {
				t.Fatalf("GetNode of %s shows the raw identifier %q:\n%s", n.addr(), raw, js)
			}
		}
		fp := resp.Node.Devices[0].Fingerprint
		if !strings.HasPrefix(fp.Uuid, "id:") || !strings.HasPrefix(fp.Serial, "id:") || fp.Name != honest.dev.Fingerprint.Name {
			t.Fatalf("device view %v", fp)
		}
		shown = append(shown, fp.Uuid)
		dup := false
		for _, r := range resp.Node.Reasons {
			if r.Code == "IDENTITY_CONTESTED" {
				dup = true
				if !strings.Contains(r.Detail, fp.Uuid) && !strings.Contains(r.Detail, fp.Serial) {
					t.Errorf("reason detail %q names neither digest (%s, %s)", r.Detail, fp.Uuid, fp.Serial)
				}
			}
		}
		if !dup {
			t.Fatalf("no duplicate reason for %s: %v", n.addr(), resp.Node.Reasons)
		}
	}
	if shown[0] != shown[1] {
		t.Fatalf("a shared UUID shows as %s and %s", shown[0], shown[1])
	}
	// The stored record keeps the identifiers (the state machine compares them).
	rec, err := m.fsm.Node(honest.key.Address())
	if err != nil || rec.Devices[0].Fingerprint.Uuid != honest.dev.Fingerprint.Uuid {
		t.Fatalf("stored record: %v %v", rec, err)
	}
	// The node's own challenges name its device UUID.
	ch := issue(t, m, honest)
	cs, err := m.fsm.Node(honest.key.Address())
	if err != nil {
		t.Fatal(err)
	}
	if v := m.challengeView(ch, cs); v.DeviceUuid != honest.dev.Fingerprint.Uuid {
		t.Fatalf("the node's challenge names device %q", v.DeviceUuid)
	}
}
