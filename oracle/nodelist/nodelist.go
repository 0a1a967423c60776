// Package nodelist holds the semantics of the ListNodes request in one
// place: page sizes, the names of the orders, which nodes a filter keeps and
// how the orders compare two nodes. The oracle answers ListNodes from the
// state machine's listing index (oracle/fsm/list.go), whose key order
// implements Compare; the API test fixture (oracle/httpapi/apitest) answers
// it by filtering and sorting in memory with Keep and Compare, so clients
// tested against the fixture see what the oracle serves.
package nodelist

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Page sizes: 0 asks for DefaultPageSize; sizes above MaxPageSize are
// capped to it.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize returns the page size a request's page_size asks for, or an
// error for a negative one.
func PageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("page_size %d is negative; use 1 to %d, or 0 for %d", n, MaxPageSize, DefaultPageSize)
	case n == 0:
		return DefaultPageSize, nil
	default:
		return min(int(n), MaxPageSize), nil
	}
}

// orders maps order_by to the listing orders.
var orders = map[string]fsm.NodeOrder{
	"":             fsm.OrderAddress,
	"address":      fsm.OrderAddress,
	"score":        fsm.OrderScoreAsc,
	"score desc":   fsm.OrderScoreDesc,
	"updated desc": fsm.OrderUpdatedDesc,
}

// ParseOrder returns the order an order_by names, or an error naming the
// valid ones.
func ParseOrder(orderBy string) (fsm.NodeOrder, error) {
	o, ok := orders[orderBy]
	if !ok {
		return 0, fmt.Errorf("order_by %q; use score, score desc, address or updated desc", orderBy)
	}
	return o, nil
}

// Keep reports whether a node passes the request's filters: its status
// (unspecified keeps every status), a claimed class among its devices'
// (empty keeps every class) and a score of at least min_score_bp.
func Keep(req *truegpuv1.ListNodesRequest, n *truegpuv1.NodeSummary) bool {
	if req.GetStatus() != truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED && n.GetStatus() != req.GetStatus() {
		return false
	}
	if req.GetClass() != "" && !slices.Contains(n.GetClasses(), req.GetClass()) {
		return false
	}
	return n.GetScoreBp() >= req.GetMinScoreBp()
}

// Compare orders two nodes as a listing in order o returns them:
//
//   - address: by address (its 20 bytes), ascending;
//   - score desc: highest score first, equal scores by address ascending;
//   - score: lowest score first, equal scores by address descending (the
//     score-descending listing read backwards);
//   - updated desc: most recently changed first, equal times by address
//     ascending.
func Compare(o fsm.NodeOrder, a, b *truegpuv1.NodeSummary) int {
	addr := compareAddress(a.GetAddress(), b.GetAddress())
	switch o {
	case fsm.OrderScoreDesc:
		return cmp.Or(cmp.Compare(b.GetScoreBp(), a.GetScoreBp()), addr)
	case fsm.OrderScoreAsc:
		return cmp.Or(cmp.Compare(a.GetScoreBp(), b.GetScoreBp()), -addr)
	case fsm.OrderUpdatedDesc:
		return cmp.Or(cmp.Compare(b.GetUpdatedAtUnixMs(), a.GetUpdatedAtUnixMs()), addr)
	default:
		return addr
	}
}

// compareAddress compares two addresses by their bytes (their API form is
// mixed-case, so its text order is not theirs).
func compareAddress(a, b string) int {
	x, errA := ethcrypto.ParseAddress(a)
	y, errB := ethcrypto.ParseAddress(b)
	if errA != nil || errB != nil {
		return cmp.Compare(a, b)
	}
	return bytes.Compare(x[:], y[:])
}
