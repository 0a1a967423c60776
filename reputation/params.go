package reputation

import (
	"encoding/binary"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// FeedParamsDigest is the paramsDigest of a feed's config digest
// (ConfigDigest): it binds the workload profiles whose proofs the scores
// rest on and the reputation parameters that turn verdicts into scores:
//
//	keccak256("truegpu.v1 feed params\x00" || uint32be(len(profiles)) ||
//	          profile digests in the given order || ParamsDigest(params))
//
// Together with the members and the threshold in ConfigDigest, a report
// signed under other profiles or other scoring rules has another config
// digest, and a feed contract deployed for this configuration refuses it.
func FeedParamsDigest(profiles [][32]byte, params Params) [32]byte {
	b := []byte("truegpu.v1 feed params\x00")
	b = binary.BigEndian.AppendUint32(b, uint32(len(profiles)))
	for _, d := range profiles {
		b = append(b, d[:]...)
	}
	pd := ParamsDigest(params)
	b = append(b, pd[:]...)
	return ethcrypto.Keccak256(b)
}
