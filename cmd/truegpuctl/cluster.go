package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func init() {
	var cf clientFlags
	register(&command{
		Name:  "cluster",
		Usage: "[flags]",
		Short: "show the oracle cluster: members, leader, epoch, health",
		Long: `
Cluster shows the members of the oracle cluster, the leader, Raft term and
indexes, the current and last signed epochs, and the health of the member
that answered.

With -o json the output is {"cluster": GetClusterResponse, "health":
GetHealthResponse} in the REST API's JSON encoding.

Exit status: 0 success (also when the member reports itself degraded; read
"health"), 1 the call failed, 2 bad usage.`,
		Flags: cf.register,
		Run: func(ctx *runContext, args []string) error {
			pos, err := parseArgs(ctx, args)
			if err != nil {
				return finish(err)
			}
			if len(pos) > 0 {
				return usageError("cluster takes no arguments")
			}
			var (
				cl *truegpuv1.GetClusterResponse
				h  *truegpuv1.GetHealthResponse
			)
			err = cf.call(func(c context.Context, conn *grpc.ClientConn) error {
				admin := truegpuv1.NewAdminServiceClient(conn)
				if cl, err = admin.GetCluster(c, &truegpuv1.GetClusterRequest{}); err != nil {
					return cf.rpcErr("get cluster", err)
				}
				h, err = admin.GetHealth(c, &truegpuv1.GetHealthRequest{})
				return cf.rpcErr("get health", err)
			})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSONObject(ctx, map[string]proto.Message{"cluster": cl, "health": h})
			}
			t := newTable(ctx.Stdout)
			t.row("Leader:", orDash(cl.GetLeaderId()))
			t.row("Term:", strconv.FormatUint(cl.GetTerm(), 10))
			t.row("Commit index:", strconv.FormatUint(cl.GetCommitIndex(), 10))
			t.row("Applied index:", strconv.FormatUint(cl.GetAppliedIndex(), 10))
			t.row("Current epoch:", strconv.FormatUint(cl.GetCurrentEpoch(), 10))
			t.row("Last signed epoch:", strconv.FormatUint(cl.GetLastCompleteEpoch(), 10))
			t.row("Report threshold:", fmt.Sprintf("%d of %d", cl.GetReportThreshold(), len(cl.GetMembers())))
			t.row("Nodes:", strconv.Itoa(int(cl.GetNodeCount())))
			t.row("Served by:", orDash(cl.GetServedBy()))
			health := h.GetStatus()
			if len(h.GetProblems()) > 0 {
				health += " (" + strings.Join(h.GetProblems(), "; ") + ")"
			}
			t.row("Health:", fmt.Sprintf("%s, raft %s, applied %d", health, orDash(h.GetRaftState()), h.GetAppliedIndex()))
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(ctx.Stdout)
			t = newTable(ctx.Stdout, "ID", "ROLE", "SUFFRAGE", "RAFT", "GRPC", "HTTP", "SIGNER")
			for _, m := range cl.GetMembers() {
				role := "follower"
				if m.GetLeader() {
					role = "leader"
				}
				t.row(m.GetId(), role, orDash(m.GetSuffrage()), orDash(m.GetRaftAddress()), orDash(m.GetGrpcAddress()),
					orDash(m.GetHttpAddress()), orDash(m.GetSignerAddress()))
			}
			return t.flush()
		},
	})
}

// printJSONObject writes several messages as one JSON object, each in the
// REST API's encoding.
func printJSONObject(ctx *runContext, parts map[string]proto.Message) error {
	var b strings.Builder
	b.WriteString("{")
	i := 0
	for _, k := range sortedKeys(parts) {
		var sb strings.Builder
		if err := printJSON(&sb, parts[k]); err != nil {
			return err
		}
		if i > 0 {
			b.WriteString(",")
		}
		i++
		fmt.Fprintf(&b, "\n  %q: %s", k, strings.ReplaceAll(strings.TrimSpace(sb.String()), "\n", "\n  "))
	}
	b.WriteString("\n}\n")
	_, err := fmt.Fprint(ctx.Stdout, b.String())
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

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
