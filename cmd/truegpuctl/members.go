package main

import (
	"context"
	"flag"
	"fmt"

	"google.golang.org/grpc"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func init() {
	var cf clientFlags
	register(&command{
		Name:  "members",
		Usage: "join ID RAFT_ADDRESS | remove ID [flags]",
		Short: "add or remove an oracle cluster member",
		Long: `
Members changes the Raft membership of the oracle cluster (gRPC only). A
production cluster requires mutual TLS: give --tls-ca, --tls-cert and
--tls-key with the certificate of the member concerned or of an operator
(oracled -operators), and call the leader (a follower answers with the
leader's address). Without TLS any member forwards the call to the leader.

  members join ID RAFT_ADDRESS   add a voting member with Raft server id ID
                                 reachable at RAFT_ADDRESS (host:port)
  members remove ID              remove the member with Raft server id ID

A joined member publishes its own row of the member table (its gRPC and HTTP
addresses and its report-signing key, signed with that key) once it runs.

Exit status: 0 the change was committed, 1 it failed, 2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			cf.register(fs)
		},
		Run: func(ctx *runContext, args []string) error {
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) == 0 {
				return usageError("members needs join ID RAFT_ADDRESS or remove ID")
			}
			var index uint64
			switch pos[0] {
			case "join":
				if len(pos) != 3 {
					return usageError("members join takes ID and RAFT_ADDRESS")
				}
				req := &truegpuv1.JoinMemberRequest{Id: pos[1], RaftAddress: pos[2]}
				err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
					resp, err := truegpuv1.NewAdminServiceClient(conn).JoinMember(c, req)
					index = resp.GetIndex()
					return cf.rpcErr("join member "+pos[1], err)
				})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return printJSON(ctx.Stdout, &truegpuv1.JoinMemberResponse{Index: index})
				}
				fmt.Fprintf(ctx.Stdout, "member %s joined at Raft index %d\n", pos[1], index)
			case "remove":
				if len(pos) != 2 {
					return usageError("members remove takes ID")
				}
				err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
					resp, err := truegpuv1.NewAdminServiceClient(conn).RemoveMember(c, &truegpuv1.RemoveMemberRequest{Id: pos[1]})
					index = resp.GetIndex()
					return cf.rpcErr("remove member "+pos[1], err)
				})
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return printJSON(ctx.Stdout, &truegpuv1.RemoveMemberResponse{Index: index})
				}
				fmt.Fprintf(ctx.Stdout, "member %s removed at Raft index %d\n", pos[1], index)
			default:
				return usageError("members %q: use join or remove", pos[0])
			}
			return nil
		},
	})
}
