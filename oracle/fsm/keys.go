package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// Key layout. Every key of the state starts with one of these prefixes;
// fixed-width integers are big-endian so keys sort numerically.
var (
	keyApplied      = []byte("\x00applied")
	keyMeta         = []byte("\x00meta")
	keyConfig       = []byte("\x00config") // the replicated configuration (config.go)
	prefixNode      = []byte("n/")         // n/<addr20> -> NodeRecord
	prefixIdentity  = []byte("i/")         // i/<identity>\x00<addr20> -> ""
	prefixChallenge = []byte("c/")         // c/<id32> -> ChallengeState
	prefixDeadline  = []byte("d/")         // d/<be64 ms><id32> -> ""
	prefixEpoch     = []byte("e/")         // e/<be64 epoch> -> EpochState
	prefixEpochVerd = []byte("v/")         // v/<be64 epoch><be64 index><be32 seq> -> id32
	prefixMember    = []byte("m/")         // m/<id> -> SetMemberCommand
	prefixHistory   = []byte("h/")         // h/<addr20><be64 issued ms><id32> -> ""
	prefixDevCount  = []byte("k/")         // k/<addr20> -> device count (uvarint)
	prefixNonce     = []byte("u/")         // u/<nonce32> -> id32 of the challenge that used it
	prefixContest   = []byte("x/")         // x/<identity> -> "": identities with an undecided contest
)

func key(prefix []byte, parts ...[]byte) []byte {
	k := slices.Clone(prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func be32(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func addrString(a []byte) string {
	if len(a) != 20 {
		return "0x" + hex.EncodeToString(a)
	}
	return ethcrypto.Address(a).String()
}
