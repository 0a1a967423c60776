package truegpuv1

import (
	"encoding/hex"
	"errors"
	"strings"
)

// ErrBadChallengeID is returned by ParseChallengeID for a string that is not
// the API form of a challenge id.
var ErrBadChallengeID = errors.New("challenge id must be 0x and 64 hex digits")

// FormatChallengeID is the API form of a challenge id (ChallengeID): "0x"
// and the id's 32 bytes as 64 lower-case hex digits. Requests, responses,
// verdicts, evidence and the oracle's replicated state all carry this form.
func FormatChallengeID(id []byte) string { return "0x" + hex.EncodeToString(id) }

// ParseChallengeID parses the API form of a challenge id back into its 32
// bytes. Upper-case hex digits are accepted; the "0x" prefix is required.
func ParseChallengeID(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "0x")
	if !ok || len(rest) != 64 {
		return nil, ErrBadChallengeID
	}
	b, err := hex.DecodeString(rest)
	if err != nil {
		return nil, ErrBadChallengeID
	}
	return b, nil
}
