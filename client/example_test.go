package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/truegpu/truegpu/client"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// A scheduler picks the 10 best trusted H100 nodes: the server filters by
// status and class and orders by score; ListNodes pages as needed.
func Example_bestTrustedH100Nodes() {
	c, err := client.Dial(server, client.Options{Insecure: true}) // a member on loopback
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	best, err := c.ListNodes(ctx, client.NodeQuery{
		Status:  truegpuv1.NodeStatus_NODE_STATUS_TRUSTED,
		Class:   "H100-SXM",
		OrderBy: client.OrderByScoreDesc,
	}, 10)
	if err != nil {
		log.Fatal(err)
	}
	for i, n := range best {
		status := strings.ToLower(strings.TrimPrefix(n.Status.String(), "NODE_STATUS_"))
		fmt.Printf("%d. %s %s, %d device(s)\n", i+1, status, strings.Join(n.Classes, ","), n.DeviceCount)
	}
	// Output:
	// 1. trusted H100-SXM, 1 device(s)
	// 2. trusted H100-SXM, 1 device(s)
	// 3. trusted H100-SXM, 1 device(s)
}

// A consumer checks the newest complete report against the member signers
// it trusts, then a node's score against the report's Merkle root, all
// offline once fetched: the checks the feed contract makes on chain.
func Example_verifyFeed() {
	c, err := client.Dial(server, client.Options{Insecure: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	report, err := c.LatestReport(ctx, false)
	if err != nil {
		log.Fatal(err)
	}
	// trustedSigners are the members' signing addresses, configured out of
	// band (the same list the feed contract holds).
	if err := client.VerifyReport(report, client.Trust{Signers: trustedSigners, Threshold: 2}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("report verified")

	nodes, err := c.ListNodes(ctx, client.NodeQuery{Status: truegpuv1.NodeStatus_NODE_STATUS_TRUSTED, Class: "H100-SXM"}, 1)
	if err != nil || len(nodes) == 0 {
		log.Fatal("no trusted H100 node: ", err)
	}
	proof, err := c.NodeProof(ctx, report.Epoch, nodes[0].Address)
	if err != nil {
		log.Fatal(err)
	}
	if err := client.VerifyNodeProof(report, proof); err != nil {
		log.Fatal(err)
	}
	fmt.Println("node proof verified:", strings.ToLower(strings.TrimPrefix(proof.Status.String(), "NODE_STATUS_")))
	// Output:
	// report verified
	// node proof verified: trusted
}

// Pages through every node, 100 per call, counting them and the trusted
// ones.
func ExampleClient_Nodes() {
	c, err := client.Dial(server, client.Options{Insecure: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	total, trusted := 0, 0
	for n, err := range c.Nodes(context.Background(), client.NodeQuery{PageSize: 100}) {
		if err != nil {
			log.Fatal(err)
		}
		total++
		if n.Status == truegpuv1.NodeStatus_NODE_STATUS_TRUSTED {
			trusted++
		}
	}
	fmt.Println("nodes:", total, "trusted:", trusted)
	// Output:
	// nodes: 5 trusted: 4
}

// Watches score changes of all nodes until the context ends; the watch
// reopens its stream if the member restarts.
func ExampleClient_WatchScores() {
	c, err := client.Dial(server, client.Options{Insecure: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c.WatchScores(ctx, client.WatchOptions{
		OnReconnect: func(err error) { log.Printf("watch interrupted (%v); reconnecting", err) },
	}, func(ch *truegpuv1.ScoreChange) error {
		fmt.Printf("%s %d -> %d bp (%s)\n", ch.Address, ch.OldScoreBp, ch.NewScoreBp, ch.NewStatus)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// Dials a production member over TLS with the cluster's CA.
func ExampleDial_tls() {
	pem, err := os.ReadFile("/etc/truegpu/ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.Dial("oracle-1.example.net:9090", client.Options{TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}
