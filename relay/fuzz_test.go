package relay

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
)

// FuzzRevertReason: revert data from an RPC endpoint is untrusted; decoding
// it never panics and always names something.
func FuzzRevertReason(f *testing.F) {
	stale := FeedABI.Errors["StaleEpoch"]
	data, _ := stale.Inputs.Pack(uint64(1), uint64(2))
	f.Add(append(stale.ID[:4:4], data...))
	paused, expired := FeedABI.Errors["FeedPaused"].ID, FeedABI.Errors["ReportExpired"].ID
	f.Add(paused[:4])
	f.Add(expired[:4])
	f.Add([]byte{0x08, 0xc3, 0x79, 0xa0}) // Error(string) with no payload
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		reason, ok := revertReason(dataErr{"0x" + common.Bytes2Hex(data)})
		if !ok || reason == "" {
			t.Fatalf("revert data %x: %q, %v", data, reason, ok)
		}
	})
}

// answerChain answers every contract call with the same bytes.
type answerChain struct {
	fakeChain
	answer []byte
}

func (c *answerChain) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return c.answer, nil
}

// FuzzReadFeedConfig: whatever a chain answers to the configuration
// views, ReadFeedConfig returns a configuration or an error, never panics,
// and never a threshold above the member count.
func FuzzReadFeedConfig(f *testing.F) {
	members, _ := FeedABI.Methods["getMembers"].Outputs.Pack([]common.Address{{1}, {2}})
	f.Add(members)
	f.Add(make([]byte, 32))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, answer []byte) {
		c, err := ReadFeedConfig(context.Background(), &answerChain{answer: answer}, feedAddr)
		if err == nil && (c.Threshold < 0 || c.Threshold > len(c.Members)) {
			t.Fatalf("threshold %d of %d members accepted", c.Threshold, len(c.Members))
		}
	})
}
