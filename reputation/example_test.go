package reputation_test

import (
	"fmt"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// Closing an epoch, signing it by 2 of 3 members and checking a node's leaf.
func Example_epochReport() {
	var keys []*ethcrypto.PrivateKey
	var members []ethcrypto.Address
	for _, seed := range []string{"m1", "m2", "m3"} {
		k := ethcrypto.KeyFromSeed([]byte(seed)) // dev keys; never in production
		keys = append(keys, k)
		members = append(members, k.Address())
	}
	node := ethcrypto.KeyFromSeed([]byte("gpu node")).Address()
	entries := []reputation.Entry{
		{Address: node, Score: 8123, Status: reputation.StatusTrusted},
		{Address: ethcrypto.KeyFromSeed([]byte("other")).Address(), Score: 0, Status: reputation.StatusRejected},
	}
	cfg := reputation.ConfigDigest(members, 2, reputation.ParamsDigest(reputation.DefaultParams()))
	report, tree, err := reputation.CloseEpoch(cfg, 1, 42, 1_700_000_000, entries)
	if err != nil {
		panic(err)
	}
	domain := reputation.NewDomain(1, ethcrypto.Address{0x01}) // chain id, feed contract
	var sigs [][]byte
	for _, k := range keys[:2] {
		s, err := reputation.SignReport(k, domain, report)
		if err != nil {
			panic(err)
		}
		sigs = append(sigs, s[:])
	}
	fmt.Println("signatures:", reputation.VerifySignatures(domain, report, sigs, members, 2))
	proof, _ := tree.Proof(node)
	fmt.Println("leaf proven:", reputation.VerifyProof(report.Root, entries[0], proof))
	// Output:
	// signatures: <nil>
	// leaf proven: true
}
