package oracle

import (
	"encoding/hex"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Public views (GetNode, hence REST and the dashboard) do not show a
// device's identifiers, its UUID and board serial: whoever knows them can
// register a copy of a node's identity. They show a digest of each
// instead,
//
//	"id:" + hex(keccak256("truegpu.v1 public device identity\x00" ||
//	    cluster id || "\x00" || kind || "\x00" || value)[:12])
//
// so two nodes that share an identifier still show the same digest. A
// UUID (random, 122 bits) cannot be recovered from its digest; a serial
// number has far less entropy and could be searched for. The node itself
// sees its own UUIDs in its challenges (signed polls and streams).

// publicIdentity is the digest shown in place of an identifier.
func (m *Member) publicIdentity(kind, value string) string {
	h := ethcrypto.Keccak256([]byte("truegpu.v1 public device identity\x00"), []byte(m.cfg.ClusterID), []byte{0}, []byte(kind), []byte{0}, []byte(value))
	return "id:" + hex.EncodeToString(h[:12])
}

// publicDevices returns copies of devs with their identifiers replaced by
// digests, and the replacements made (identity "uuid:..." → "uuid:id:...").
func (m *Member) publicDevices(devs []*truegpuv1.Device) ([]*truegpuv1.Device, *strings.Replacer) {
	out := make([]*truegpuv1.Device, len(devs))
	var pairs []string
	for i, d := range devs {
		c := proto.Clone(d).(*truegpuv1.Device)
		if fp := c.Fingerprint; fp != nil {
			if fp.Uuid != "" {
				pub := m.publicIdentity("uuid", fp.Uuid)
				pairs = append(pairs, "uuid:"+fp.Uuid, "uuid:"+pub)
				fp.Uuid = pub
			}
			if fp.Serial != "" {
				pub := m.publicIdentity("serial", fp.Serial)
				pairs = append(pairs, "serial:"+fp.Serial, "serial:"+pub)
				fp.Serial = pub
			}
		}
		out[i] = c
	}
	return out, strings.NewReplacer(pairs...)
}

// publicReasons returns copies of reasons whose details name identifiers
// through r.
func publicReasons(reasons []*truegpuv1.Reason, r *strings.Replacer) []*truegpuv1.Reason {
	out := make([]*truegpuv1.Reason, len(reasons))
	for i, rs := range reasons {
		c := proto.Clone(rs).(*truegpuv1.Reason)
		c.Detail = r.Replace(c.Detail)
		out[i] = c
	}
	return out
}
