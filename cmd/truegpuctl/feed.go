package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func init() {
	var (
		cf         clientFlags
		incomplete bool
	)
	register(&command{
		Name:  "feed",
		Usage: "latest | EPOCH | proof EPOCH ADDRESS | relay | sign-config-update | update-config [flags]",
		Short: "show signed epoch reports and a node's Merkle proof",
		Long: `
Feed reads the signed reputation feed that reward contracts consume.

  feed latest               the newest report with at least the threshold of
                            member signatures (--include-incomplete: the newest
                            report at all)
  feed EPOCH                the report of one epoch
  feed proof EPOCH ADDRESS  a node's leaf (score, status) and Merkle proof in
                            an epoch, to check against the report's root
  feed relay [flags]        submit each complete report to the feed contract
                            on a chain over JSON-RPC (flags: feed relay -h)
  feed sign-config-update [flags]
                            sign, as a current member, the change of the feed
                            contract's members, threshold and parameters
  feed update-config [flags]
                            send that change with k of the current members'
                            signatures (flags: -h on each)

Hashes and signatures are printed as 0x hex. With -o json the output is the
response message in the REST API's JSON encoding (bytes as base64).

Exit status: 0 success, 1 the call failed (including an unknown epoch or
node), 2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
			fs.BoolVar(&incomplete, "include-incomplete", false, "feed latest: also return a report that lacks signatures")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) > 0 {
				switch args[0] {
				case "relay":
					return runRelay(ctx, args[1:])
				case "sign-config-update":
					return runSignConfigUpdate(ctx, args[1:])
				case "update-config":
					return runUpdateConfig(ctx, args[1:])
				}
			}
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) == 0 {
				return usageError("feed needs latest, EPOCH or proof EPOCH ADDRESS")
			}
			switch {
			case pos[0] == "latest":
				if len(pos) != 1 {
					return usageError("feed latest takes no more arguments")
				}
				var resp *truegpuv1.GetLatestReportResponse
				err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
					resp, err = truegpuv1.NewFeedServiceClient(conn).GetLatestReport(c, &truegpuv1.GetLatestReportRequest{IncludeIncomplete: incomplete})
					return cf.rpcErr("get latest report", err)
				})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return printJSON(ctx.Stdout, resp)
				}
				return printReport(ctx, resp.GetReport())
			case pos[0] == "proof":
				if len(pos) != 3 {
					return usageError("feed proof takes EPOCH and ADDRESS")
				}
				epoch, err := parseEpoch(pos[1])
				if err != nil {
					return err
				}
				var resp *truegpuv1.GetNodeProofResponse
				err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
					resp, err = truegpuv1.NewFeedServiceClient(conn).GetNodeProof(c, &truegpuv1.GetNodeProofRequest{Epoch: epoch, Address: pos[2]})
					return cf.rpcErr(fmt.Sprintf("get proof of %s in epoch %d", pos[2], epoch), err)
				})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return printJSON(ctx.Stdout, resp)
				}
				t := newTable(ctx.Stdout)
				t.row("Epoch:", strconv.FormatUint(resp.GetEpoch(), 10))
				t.row("Address:", resp.GetAddress())
				t.row("Score:", pct(resp.GetScoreBp()))
				t.row("Status:", statusWord(resp.GetStatus()))
				t.row("Leaf:", hex0x(resp.GetLeaf()))
				t.row("Root:", hex0x(resp.GetRoot()))
				for i, p := range resp.GetProof() {
					label := ""
					if i == 0 {
						label = "Proof:"
					}
					t.row(label, hex0x(p))
				}
				return t.flush()
			default:
				if len(pos) != 1 {
					return usageError("feed EPOCH takes no more arguments")
				}
				epoch, err := parseEpoch(pos[0])
				if err != nil {
					return err
				}
				var resp *truegpuv1.GetReportResponse
				err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
					resp, err = truegpuv1.NewFeedServiceClient(conn).GetReport(c, &truegpuv1.GetReportRequest{Epoch: epoch})
					return cf.rpcErr(fmt.Sprintf("get report of epoch %d", epoch), err)
				})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return printJSON(ctx.Stdout, resp)
				}
				return printReport(ctx, resp.GetReport())
			}
		},
	})
}

func parseEpoch(s string) (uint64, error) {
	e, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usageError("%q is not an epoch number (use latest, EPOCH or proof EPOCH ADDRESS)", s)
	}
	return e, nil
}

func hex0x(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return "0x" + hex.EncodeToString(b)
}

func printReport(ctx *runContext, r *truegpuv1.EpochReport) error {
	t := newTable(ctx.Stdout)
	t.row("Epoch:", strconv.FormatUint(r.GetEpoch(), 10))
	t.row("Round:", strconv.FormatUint(r.GetRound(), 10))
	t.row("Timestamp:", fmtTime(int64(r.GetTimestamp())*1000))
	t.row("Valid:", fmt.Sprintf("from %s until %s", fmtTime(int64(r.GetValidFrom())*1000), fmtTime(int64(r.GetExpiresAt())*1000)))
	t.row("Nodes:", strconv.FormatUint(r.GetCount(), 10))
	t.row("Root:", hex0x(r.GetRoot()))
	t.row("Digest:", hex0x(r.GetDigest()))
	t.row("Config digest:", hex0x(r.GetConfigDigest()))
	d := r.GetDomain()
	t.row("Domain:", fmt.Sprintf("%s v%s, chain %d, contract %s", d.GetName(), d.GetVersion(), d.GetChainId(), orDash(d.GetVerifyingContract())))
	state := "incomplete"
	if r.GetComplete() {
		state = "complete"
	}
	t.row("Signatures:", fmt.Sprintf("%d of %d signers, %d needed (%s)", len(r.GetSignatures()), len(r.GetSigners()), r.GetThreshold(), state))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(ctx.Stdout)
	t = newTable(ctx.Stdout, "SIGNER", "MEMBER", "SIGNATURE")
	for _, s := range r.GetSigners() {
		member, sig := "-", "(not signed)"
		for _, ms := range r.GetSignatures() {
			if strings.EqualFold(ms.GetSignerAddress(), s) {
				member, sig = ms.GetMemberId(), hex0x(ms.GetSignature())
			}
		}
		t.row(s, member, sig)
	}
	return t.flush()
}
